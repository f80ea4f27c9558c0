"""record_hashes, the load's hash-ordered copy of the hashes in records, stays in step with
records through loads, re-runs and batches, and a home from before it gets it filled on
start: a file loaded then still counts as the duplicate of what was loaded earlier (issue 16)."""

from pathlib import Path

import pytest
from ingest_support import land_files

from creditlake.clickhouse.ddl import HASH_KEY, HASHES_VIEW, migrate
from creditlake.config import Processing
from creditlake.ingest.load import load, load_many
from creditlake.ingest.normalize import normalize
from creditlake.ingest.overrides import SourceRule
from creditlake.ingest.pipeline import ingest_file
from creditlake.ingest.policy import RejectPolicy

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
