"""The survivor rule of creditlake.entity.ids on small hand-made clusterings (DuckDB only)."""

from __future__ import annotations

import duckdb
import pyarrow as pa

from creditlake.entity.ids import stable_ids


def _assign(pairs: list[tuple[str, str]]) -> pa.Table:
    return pa.table({"record_id": [r for r, _ in pairs], "entity_id": [e for _, e in pairs],
                     "cluster_size": pa.array([1] * len(pairs), pa.uint32()),
                     "match_probability": [1.0] * len(pairs)})


def _ids(table: pa.Table) -> dict[str, str]:
    return dict(zip(table["record_id"].to_pylist(), table["entity_id"].to_pylist(),
                    strict=True))


def test_first_run_keeps_cluster_keys_and_records_nothing() -> None:
    new = _assign([("r1", "r1"), ("r2", "r1")])
    mapped, events = stable_ids(duckdb.connect(), new, _assign([]))
    assert _ids(mapped) == {"r1": "r1", "r2": "r1"} and events.num_rows == 0


def test_same_clusters_keep_their_ids_whatever_the_new_keys() -> None:
    prev = _assign([("r1", "r2"), ("r2", "r2"), ("r3", "r3")])  # r2 named the entity
    new = _assign([("r1", "r1"), ("r2", "r1"), ("r3", "r3")])
    mapped, events = stable_ids(duckdb.connect(), new, prev)
    assert _ids(mapped) == {"r1": "r2", "r2": "r2", "r3": "r3"} and events.num_rows == 0


def test_merge_keeps_the_smallest_id_and_split_never_reuses_an_old_id() -> None:
    prev = _assign([("r1", "r1"), ("r2", "r1"), ("r3", "r3"), ("r4", "r3"),
                    ("r5", "r5"), ("r6", "r5"), ("r7", "r5")])
    new = _assign([("r1", "r1"), ("r2", "r1"), ("r3", "r1"), ("r4", "r1"),  # r1+r3 merge
                   ("r5", "r5"),  # r5 leaves its entity ...
                   ("r6", "r6"), ("r7", "r6"), ("r8", "r6"),  # ... which keeps its id
                   ("r9", "r9")])  # a new person
    retired = pa.table({"alias_id": ["r9x"]})
    mapped, events = stable_ids(duckdb.connect(), new, prev, retired)
    ids = _ids(mapped)
    assert ids["r3"] == ids["r4"] == ids["r1"] == "r1"
    assert ids["r6"] == ids["r7"] == ids["r8"] == "r5"
    assert ids["r9"] == "r9"
    assert ids["r5"] not in {"r1", "r3", "r5", "r9"}  # split off: a fresh, stable id
    ev = {(e["entity_id"], e["other_id"], e["event"]) for e in events.to_pylist()}
    assert ev == {("r3", "r1", "merge"), (ids["r5"], "r5", "split")}
    again, _ = stable_ids(duckdb.connect(), new, prev, retired)
    assert _ids(again) == ids  # deterministic


def test_a_retired_id_is_not_handed_out_again() -> None:
    prev = _assign([("r2", "r2")])
    new = _assign([("r1", "r1"), ("r2", "r2")])  # r1 was absorbed earlier (an alias now)
    mapped, _ = stable_ids(duckdb.connect(), new, prev, pa.table({"alias_id": ["r1"]}))
    assert _ids(mapped)["r1"] != "r1"
