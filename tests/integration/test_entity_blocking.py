"""Blocking keys shared by too many records (one name repeated across a file) are skipped and
reported instead of exploding the comparisons; an entity run leaves nothing in the CWD."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from splink.blocking_analysis import count_comparisons_from_blocking_rules

from creditlake.entity import duck, linking
from creditlake.entity.model import blocking_columns, load_model
from creditlake.entity.prepare import prepare
from creditlake.entity.resolve import resolve
from creditlake.entity.run import run_entities
from creditlake.entity.synthetic import generate_people, to_records_table

pytestmark = pytest.mark.integration
N = 2 * linking.MAX_BLOCK_RECORDS  # records, all "John Smith" of London


@pytest.fixture(scope="module")
def smiths() -> pa.Table:
    """Generated people (with their typo'd duplicates) all renamed John Smith of London."""
    people = to_records_table(generate_people(N, seed=31))
    people = people.set_column(people.schema.get_field_index("name"), "name",
                               pa.array(["John Smith"] * people.num_rows))
    return people.set_column(people.schema.get_field_index("city"), "city",
                             pa.array(["London"] * people.num_rows))


def _comparisons(features: pa.Table, rules: list) -> int:
    db_api = linking.duckdb_api()
    counts = count_comparisons_from_blocking_rules(
        db_api.register(features), blocking_rules=rules, link_type="dedupe_only",
        record_sample_proportion=1.0)
    return int(counts[-1]["cumulative_comparison_count"])


def test_a_repeated_name_does_not_explode_comparisons(smiths) -> None:
    model = load_model()
    feats = prepare(smiths.drop_columns(["status", "data_quality_score"]))
    n = feats.num_rows
    con = linking.duckdb_connection()
    (capped,), cap = linking.cap_blocks(con, [feats], blocking_columns(model))
    by_rule = {s["rule"]: s for s in cap.skipped}
    assert set(by_rule) == {"surname+city", "first_name+surname"}, cap.skipped
    assert by_rule["surname+city"] == {"rule": "surname+city", "keys": 1, "records": n,
                                       "pairs": n * (n - 1) // 2}
    assert cap.totals()["blocking_keys_skipped"] == 2
    uncapped = _comparisons(feats, linking.blocking_rules(model, "duckdb"))
    bounded = _comparisons(capped, linking.blocking_rules(model, "duckdb", cap))
    assert uncapped >= n * (n - 1) // 2  # every pair of Smiths
    assert bounded < n * 5, (bounded, uncapped)  # the pairs of the identifying keys only


def test_the_run_reports_skipped_keys_and_still_links_duplicates(engine, smiths) -> None:
    engine.insert_arrow(f"{engine.database}.records", smiths)
    res = resolve(engine, load_model(), "full")
    rules = sorted(s["rule"] for s in res.skipped_blocks)
    assert rules == ["first_name+surname", "surname+city"], res.skipped_blocks
    assert res.skipped["blocking_keys_skipped"] == 2
    # The generator's duplicates share an e-mail, phone or address: still linked by those.
    rows = engine.query_rows(f"SELECT entity_id, JSONExtractInt(r.metadata, 'ref') FROM"
                             f" {engine.database}.entities AS e FINAL JOIN"
                             f" {engine.database}.records AS r ON toString(r.id) = e.record_id")
    refs_per_entity: dict[str, set[int]] = {}
    for entity, ref in rows:
        refs_per_entity.setdefault(entity, set()).add(ref)
    merged = sum(1 for refs in refs_per_entity.values() if len(refs) == 1)
    people = len(set(pc.unique(pa.array([r for _, r in rows])).to_pylist()))
    assert len(refs_per_entity) < smiths.num_rows  # duplicates were merged
    assert merged / len(refs_per_entity) > 0.99  # no two people merged into one entity
    assert len(refs_per_entity) <= people * 1.2  # most duplicates found


def test_an_entity_run_leaves_nothing_in_the_cwd(engine, smiths, tmp_path: Path,
                                                 monkeypatch) -> None:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    home = tmp_path / "home"
    engine.insert_arrow(f"{engine.database}.records", smiths)
    run = run_entities(engine, home, memory_limit="200MB")
    assert run.result.records_in == smiths.num_rows
    assert list(cwd.iterdir()) == []
    spill_root = home / duck.SPILL_SUBDIR
    assert not spill_root.exists() or list(spill_root.iterdir()) == []
