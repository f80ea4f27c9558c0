"""record_hashes, the load's hash-ordered copy of the hashes in records, stays in step with
records through loads, re-runs and batches, and a home from before it gets it filled on
start: a file loaded then still counts as the duplicate of what was loaded earlier (issue 16)."""

from pathlib import Path

import pytest
from ingest_support import land_files

from creditlake.clickhouse.ddl import HASH_KEY, HASHES_VIEW, _refuse_an_old_cluster, migrate
from creditlake.config import Processing
from creditlake.ingest.hashes import hash_drift, sync_record_hashes
from creditlake.ingest.load import delete_loaded, load, load_many
from creditlake.ingest.normalize import normalize
from creditlake.ingest.overrides import SourceRule
from creditlake.ingest.pipeline import ingest_file
from creditlake.ingest.policy import RejectPolicy
from creditlake.quality import duplicate_hashes

pytestmark = pytest.mark.integration

FILES = {  # b repeats a's ann, c repeats b's bob
    "a.csv": "email,name\nann@example.com,Ann\ncid@example.com,Cid\n",
    "b.csv": "email,name\nann@example.com,Ann\nbob@example.com,Bob\n",
    "c.csv": "email,name\nbob@example.com,Bob\ndee@example.com,Dee\n",
}


def mirrored(engine) -> list[tuple]:
    """(hash, ingest_key) of every row of records, as record_hashes must hold them."""
    db = engine.database
    recs = sorted(engine.query_rows(f"SELECT {HASH_KEY}, ingest_key FROM {db}.records"))
    assert recs == sorted(engine.query_rows(f"SELECT hash, ingest_key FROM {db}.record_hashes"))
    return recs


def staged(engine, home: Path, d: Path) -> list[str]:
    keys = land_files(engine, home, d, FILES)
    for key in keys:
        normalize(engine, home, key, processing=Processing())
    return keys


def test_hashes_follow_loads_reruns_and_batches(engine, tmp_path: Path) -> None:
    home = tmp_path / "home"
    keys = staged(engine, home, tmp_path / "in")
    policy = RejectPolicy()
    for key in keys:
        load(engine, home, key, policy=policy, keep_staging=True)
    assert len(mirrored(engine)) == 4  # ann, cid, bob, dee
    counts = [(m.loaded, m.duplicates) for m in
              (load(engine, home, k, policy=policy, keep_staging=True) for k in keys)]
    assert counts == [(2, 0), (1, 1), (1, 1)]  # a re-run replaces each file's own rows
    assert len(mirrored(engine)) == 4
    done = load_many(engine, home, keys, policy=policy, rule=lambda _: SourceRule())
    assert [(m.loaded, m.duplicates) for m in done] == [(2, 0), (1, 1), (1, 1)]
    assert len(mirrored(engine)) == 4


def test_a_home_from_before_gets_its_hashes(engine, tmp_path: Path) -> None:
    home, d = tmp_path / "home", tmp_path / "in"
    d.mkdir()
    (d / "a.csv").write_text(FILES["a.csv"])
    (d / "b.csv").write_text(FILES["b.csv"])
    ingest_file(engine, home, d / "a.csv", processing=Processing())
    db = engine.database
    engine.command(f"DROP VIEW {db}.{HASHES_VIEW}")  # as an earlier version left the home
    engine.command(f"DROP TABLE {db}.record_hashes")
    migrate(engine)
    assert len(mirrored(engine)) == 2
    m = ingest_file(engine, home, d / "b.csv", processing=Processing())
    assert (m.loaded, m.duplicates) == (1, 1)  # ann was loaded before the migration
    assert len(mirrored(engine)) == 3
    migrate(engine)  # up to date: nothing copied twice
    assert len(mirrored(engine)) == 3


def test_a_refill_killed_part_way_is_redone(engine, tmp_path: Path) -> None:
    home, d = tmp_path / "home", tmp_path / "in"
    d.mkdir()
    (d / "a.csv").write_text(FILES["a.csv"])
    ingest_file(engine, home, d / "a.csv", processing=Processing())
    db = engine.database
    engine.command(f"DROP VIEW {db}.{HASHES_VIEW}")  # killed after the copy, before the view
    engine.command(f"INSERT INTO {db}.record_hashes SELECT {HASH_KEY}, 'stale' "
                   f"FROM {db}.records")
    migrate(engine)
    assert len(mirrored(engine)) == 2


def test_rows_left_without_hashes_get_them_back(engine, tmp_path: Path) -> None:
    home, d = tmp_path / "home", tmp_path / "in"
    d.mkdir()
    for name in ("a.csv", "b.csv"):
        (d / name).write_text(FILES[name])
    a = ingest_file(engine, home, d / "a.csv", processing=Processing())
    db = engine.database
    # killed between a re-run's two DELETEs: a's rows stay, their hashes are gone
    engine.command(f"DELETE FROM {db}.record_hashes WHERE ingest_key = {{k:String}}",
                   {"k": a.key})
    check = duplicate_hashes(engine, [a.key])
    assert check.metadata["record_hashes_out_of_step"] == [a.key]  # reported, not repaired
    b = ingest_file(engine, home, d / "b.csv", processing=Processing())
    assert (b.loaded, b.duplicates) == (1, 1)  # ann is a's, found again before b's insert
    assert len(mirrored(engine)) == 3


def test_a_merged_away_row_leaves_no_stale_hash(engine, tmp_path: Path) -> None:
    """Two rows share a hash (a race of two writers on a server, or an older home); the
    merge keeps the later one, whose file is then re-run without it. The earlier file's hash
    stays in record_hashes with no row behind it, and ann must still load from a new file."""
    home, d = tmp_path / "home", tmp_path / "in"
    d.mkdir()
    (d / "a.csv").write_text(FILES["a.csv"])
    (d / "ann.csv").write_text("email,name\nann@example.com,Ann\n")
    a = ingest_file(engine, home, d / "a.csv", processing=Processing())
    db = engine.database
    # (filtered in a subquery: ClickHouse's WHERE would see the REPLACEd ingest_key)
    engine.command(f"INSERT INTO {db}.records SELECT * REPLACE ('other' AS ingest_key, "
                   f"ingested_at + INTERVAL 1 SECOND AS ingested_at) FROM (SELECT * FROM "
                   f"{db}.records WHERE ingest_key = {{k:String}} AND email = 'ann@example.com')",
                   {"k": a.key})
    engine.command(f"OPTIMIZE TABLE {db}.records FINAL")
    owners = engine.query_rows(f"SELECT ingest_key FROM {db}.records "
                               "WHERE email = 'ann@example.com'")
    assert owners == [("other",)]  # the merge kept the later copy only
    delete_loaded(engine, ["other"])
    assert hash_drift(engine) == [a.key]  # a's ann hash, with no row behind it
    m = ingest_file(engine, home, d / "ann.csv", processing=Processing())
    assert (m.loaded, m.duplicates) == (1, 0)
    assert len(mirrored(engine)) == 2  # cid, and ann again
    assert sync_record_hashes(engine) == []


def test_a_stale_hash_is_dropped_before_the_load(engine, tmp_path: Path) -> None:
    home, d = tmp_path / "home", tmp_path / "in"
    d.mkdir()
    (d / "ann.csv").write_text("email,name\nann@example.com,Ann\n")
    (d / "a.csv").write_text(FILES["a.csv"])
    first = ingest_file(engine, home, d / "ann.csv", processing=Processing())
    db = engine.database
    # a's ann hash without its row, as a merge or a double fill leaves it
    engine.command(f"INSERT INTO {db}.record_hashes SELECT hash, 'gone' FROM {db}.record_hashes "
                   "WHERE ingest_key = {k:String}", {"k": first.key})
    delete_loaded(engine, [first.key])
    m = ingest_file(engine, home, d / "a.csv", processing=Processing())
    assert (m.loaded, m.duplicates) == (2, 0)
    assert len(mirrored(engine)) == 2


def test_a_batch_repairs_before_it_inserts(engine, tmp_path: Path) -> None:
    home = tmp_path / "home"
    keys = staged(engine, home, tmp_path / "in")
    policy = RejectPolicy()
    load(engine, home, keys[0], policy=policy, keep_staging=True)  # ann, cid
    db = engine.database
    # one of a's hashes gone and one stale in its place: a's counts still agree
    engine.command(f"DELETE FROM {db}.record_hashes WHERE hash = (SELECT {HASH_KEY} FROM "
                   f"{db}.records WHERE email = 'ann@example.com')")
    engine.command(f"INSERT INTO {db}.record_hashes VALUES (1, {{k:String}})", {"k": keys[0]})
    engine.command(f"INSERT INTO {db}.record_hashes VALUES (2, 'gone')")  # the totals differ
    done = load_many(engine, home, keys[1:], policy=policy, rule=lambda _: SourceRule())
    assert [(m.loaded, m.duplicates) for m in done] == [(1, 1), (1, 1)]
    assert len(mirrored(engine)) == 4


@pytest.mark.parametrize("present, refused", [
    ({"records": "Distributed", "record_hashes": "MergeTree",
      HASHES_VIEW: "MaterializedView"}, True),  # an earlier version's one-node copy
    ({"records": "Distributed"}, True),
    ({"records": "Distributed", "record_hashes": "Distributed"}, True),
    ({"records": "Distributed", "record_hashes": "Distributed",
      HASHES_VIEW: "MaterializedView"}, False),
    ({"records": "ReplacingMergeTree"}, False),
])
def test_an_old_cluster_is_refused(present: dict[str, str], refused: bool) -> None:
    if refused:
        with pytest.raises(RuntimeError, match="ddl_cluster --apply"):
            _refuse_an_old_cluster(present)
    else:
        _refuse_an_old_cluster(present)
