"""load_many (a batch's dedup+load in a few statements) gives what load() of each file in the
same order gives: per-file loaded/duplicates, statuses, ingestion_log rows, the same records;
a held file keeps its stage table; a re-run replaces the files' own rows (issue 16)."""

import shutil
from pathlib import Path

import pytest
from ingest_support import land_files

from creditlake import quality
from creditlake.clickhouse.ddl import HASH_KEY, hash_ranges
from creditlake.config import Processing
from creditlake.ingest import load as load_mod
from creditlake.ingest.accounting import without_rejects
from creditlake.ingest.load import drop_batch_stages, load, load_many
from creditlake.ingest.manifest import load_manifest, stage_table
from creditlake.ingest.normalize import normalize, normalize_many
from creditlake.ingest.overrides import SourceOverrides, SourceRule
from creditlake.ingest.pipeline import ingest_file
from creditlake.ingest.policy import RejectPolicy

pytestmark = pytest.mark.integration

FILES = {  # b repeats a's ann, c repeats itself and b's bob: duplicates across and within files
    "a.csv": "email,name\nann@example.com,Ann\ncid@example.com,Cid\n",
    "b.csv": "email,name\nann@example.com,Ann\nbob@example.com,Bob\nnot-an-email,X\n",
    "c.csv": "email,name\nbob@example.com,Bob\ndee@example.com,Dee\ndee@example.com,Dee\n",
    "bad.csv": "email,name\n" + "nope,X\n" * 12 + "eve@example.com,Eve\n",
}


def stage_all(engine, home: Path, d: Path, *, batched: bool = False) -> list[str]:
    keys = land_files(engine, home, d, FILES)
    with without_rejects(engine, keys):
        if batched:  # one batch stage table, as a batch run stages its small files
            assert all(not isinstance(m, Exception) for m in
                       normalize_many(engine, home, keys, processing=Processing()).values())
        else:
            for key in keys:
                normalize(engine, home, key, processing=Processing())
    return keys


def outcome(engine, keys):
    db = engine.database
    log = engine.query_rows(f"SELECT source_file, rows_read, loaded, duplicates, rejected, "
                            f"held, status FROM {db}.ingestion_log FINAL ORDER BY source_file")
    recs = engine.query_rows(f"SELECT email, source_file FROM {db}.records ORDER BY email")
    rej = engine.query_rows(f"SELECT count() FROM {db}.rejected_records")
    return log, recs, rej


@pytest.mark.parametrize("batched", [False, True], ids=["own-stage", "batch-stage"])
def test_batch_load_equals_file_by_file(engine, tmp_path, batched):
    policy = RejectPolicy(max_failure_rate=0.1, min_rejects=10)
    block = SourceOverrides((SourceRule(match="bad.csv", on_reject="block"),))
    home1, home2 = tmp_path / "h1", tmp_path / "h2"
    keys = stage_all(engine, home1, tmp_path / "in")
    for key in keys:
        m = load(engine, home1, key, policy=policy, rule=block.for_source(key.split("@")[0]))
    one_by_one = outcome(engine, keys)
    engine.command(f"TRUNCATE TABLE {engine.database}.records")
    engine.command(f"TRUNCATE TABLE {engine.database}.record_hashes")
    engine.command(f"TRUNCATE TABLE {engine.database}.rejected_records")
    engine.command(f"TRUNCATE TABLE {engine.database}.ingestion_log")
    engine.command(f"DROP TABLE IF EXISTS {stage_table(engine, keys[-1])}")

    keys2 = stage_all(engine, home2, tmp_path / "in", batched=batched)
    assert keys2 == keys
    manifests = load_many(engine, home2, keys, policy=policy, rule=block.for_source)
    assert outcome(engine, keys) == one_by_one
    by_name = {m.source_file: m for m in manifests}
    assert (by_name["a.csv"].loaded, by_name["b.csv"].loaded, by_name["c.csv"].loaded) == (2, 1, 1)
    assert (by_name["b.csv"].duplicates, by_name["c.csv"].duplicates) == (1, 2)
    assert str(by_name["bad.csv"].status) == "blocked" and by_name["bad.csv"].held == 1
    assert m.held == 1  # the file-by-file run held it too
    # a held file keeps its stage table; the others' are dropped
    tables = {r[0] for r in engine.query_rows(
        f"SELECT name FROM system.tables WHERE database = '{engine.database}'")}
    assert stage_table(engine, keys[-1]).split(".")[1] in tables
    assert not any(stage_table(engine, k).split(".")[1] in tables for k in keys[:-1])
    assert not any(t.startswith("stage_batch_") for t in tables)  # the batch's table is gone
    assert all(o.passed for o in quality.reconciliation_by_file(engine, keys).values())

    # a re-run of the batch replaces its own rows: same counts, nothing doubled
    stage_all(engine, home2, tmp_path / "in", batched=batched)
    load_many(engine, home2, keys, policy=policy, rule=block.for_source)
    assert outcome(engine, keys) == one_by_one


def test_rows_are_grouped_by_chunk_size(monkeypatch):
    from creditlake.ingest.manifest import Manifest

    monkeypatch.setattr(load_mod, "LOAD_CHUNK_ROWS", 10)
    ms = [Manifest(key=str(i), source_file="", path="", valid=v)
          for i, v in enumerate([4, 6, 1, 30, 2, 3])]
    groups = [[m.key for m in g] for g in load_mod._row_groups(ms)]
    assert groups == [["0", "1"], ["2"], ["3"], ["4", "5"]]


def test_staging_gone(engine, tmp_path):
    """As load(): a loaded file whose staging is gone keeps its rows; a normalized one fails
    with what to do, and the other files of the batch still load."""
    home = tmp_path / "h"
    keys = stage_all(engine, home, tmp_path / "in")
    policy = RejectPolicy(max_failure_rate=1.0)
    load_many(engine, home, keys[:1], policy=policy, rule=SourceOverrides().for_source)
    engine.command(f"DROP TABLE IF EXISTS {stage_table(engine, keys[1])}")  # b: staging lost
    out = {m.source_file: m for m in load_many(engine, home, keys, policy=policy,
                                                rule=SourceOverrides().for_source)}
    assert str(out["a.csv"].status) == "loaded" and out["a.csv"].loaded == 2  # kept
    assert str(out["b.csv"].status) == "failed" and "normalize/contacts" in out["b.csv"].message
    assert str(out["c.csv"].status) == "loaded" and out["c.csv"].loaded == 2
    assert engine.query_rows(f"SELECT count() FROM {engine.database}.records "
                             "WHERE source_file = 'a.csv'")[0][0] == 2


def test_batch_stage_table_goes_when_no_file_needs_it(engine, tmp_path):
    """Files staged in a batch table and loaded in parts (one file, then the rest, as a
    dedup retried file by file does): the table stays until the last file is loaded, and
    the records are those of one load_many."""
    home = tmp_path / "h"
    keys = stage_all(engine, home, tmp_path / "in", batched=True)
    table = load_manifest(home, keys[0]).stage
    policy = RejectPolicy(max_failure_rate=1.0)
    load(engine, home, keys[0], policy=policy)
    drop_batch_stages(engine, home, {table}, keys[:1])
    assert engine.query_rows(f"EXISTS TABLE {table}")[0][0]  # the others still need it
    load_many(engine, home, keys[1:], policy=policy, rule=SourceOverrides().for_source)
    assert not engine.query_rows(f"EXISTS TABLE {table}")[0][0]
    log, recs, _ = outcome(engine, keys)
    assert [r[2:4] for r in log] == [(2, 0), (1, 1), (1, 0), (1, 2)]  # a, b, bad, c
    assert len(recs) == 5


def _rows_and_counts(engine, home: Path, d: Path) -> tuple[list[tuple], list[tuple]]:
    """Ingest d/early.csv then d/big.csv; the records and each file's (loaded, duplicates)."""
    db = engine.database
    for table in ("records", "record_hashes"):
        engine.command(f"TRUNCATE TABLE {db}.{table}")
    shutil.rmtree(home, ignore_errors=True)
    ms = [ingest_file(engine, home, d / n, processing=Processing())
          for n in ("early.csv", "big.csv")]
    rows = engine.query_rows(f"SELECT email, city, source_file FROM {db}.records ORDER BY email")
    return rows, [(m.loaded, m.duplicates) for m in ms]


def _big_files(d: Path) -> list[str]:
    """d/early.csv (20 people) and d/big.csv (120 people, then the first 60 again)."""
    d.mkdir()
    people = [f"p{i}@example.com" for i in range(120)]
    (d / "early.csv").write_text("email,city\n" + "".join(
        f"{e},Early\n" for e in people[:20]))
    # every person once (city First), then the first 60 again (city Second)
    (d / "big.csv").write_text("email,city\n" + "".join(
        f"{e},{city}\n" for city, group in (("First", people), ("Second", people[:60]))
        for e in group))
    return people


def _load_tables(engine) -> list[str]:
    return [r[0] for r in engine.query_rows(
        "SELECT name FROM system.tables WHERE database = {d:String} AND name LIKE '%\\_load'",
        {"d": engine.database})]


@pytest.mark.parametrize("attach_rows", [1_000_000, 48])  # one attach; one every 3 chunks
def test_a_big_file_loads_in_hash_range_chunks_as_in_one(engine, tmp_path, monkeypatch,
                                                         attach_rows):
    """A file larger than a load chunk is loaded in chunks of hash ranges: the same rows and
    counts as one chunk, the first copy of a hash in the file wins, and a copy of an earlier
    file's row is a duplicate, whichever chunk it falls in. The chunks go through merge-free
    tables attached to records: record_hashes has every loaded hash, and none is left."""
    d = tmp_path / "in"
    people = _big_files(d)
    whole = _rows_and_counts(engine, tmp_path / "h1", d)
    monkeypatch.setattr(load_mod, "LOAD_CHUNK_ROWS", 16)
    monkeypatch.setattr(load_mod, "ATTACH_ROWS", attach_rows)
    groups, real = [], load_mod._into_records

    def counted(engine, key, *, merge_free):
        groups.append(merge_free)
        return real(engine, key, merge_free=merge_free)

    monkeypatch.setattr(load_mod, "_into_records", counted)
    chunks = hash_ranges(180, load_mod.LOAD_CHUNK_ROWS)
    assert len(chunks) == 12 and chunks[0][0] == 0 and chunks[-1][1] == 1 << 16
    assert all(a[1] == b[0] for a, b in zip(chunks, chunks[1:], strict=False))  # a partition
    chunked = _rows_and_counts(engine, tmp_path / "h2", d)
    assert chunked == whole
    rows, counts = chunked
    assert counts == [(20, 0), (100, 80)]
    assert {(e, c) for e, c, _ in rows} == (
        {(e, "Early") for e in people[:20]} | {(e, "First") for e in people[20:]})
    db = engine.database
    # early.csv (20 rows: one chunk, direct), then big.csv's 12 chunks in 1 or 4 attaches
    assert groups == [False] + [True] * (1 if attach_rows > 180 else 4)
    assert sorted(engine.query_rows(f"SELECT {HASH_KEY} FROM {db}.records")) == sorted(
        engine.query_rows(f"SELECT hash FROM {db}.record_hashes"))
    assert _load_tables(engine) == []


def test_a_big_file_whose_load_fails_part_way_leaves_records_as_they_were(
        engine, tmp_path, monkeypatch):
    """A chunk that fails after others were written: no row of the file is in records (its
    chunks were in the merge-free table, dropped), and the file loads whole on a re-run."""
    d = tmp_path / "in"
    _big_files(d)
    home, db = tmp_path / "h", engine.database
    for table in ("records", "record_hashes"):
        engine.command(f"TRUNCATE TABLE {db}.{table}")
    monkeypatch.setattr(load_mod, "LOAD_CHUNK_ROWS", 16)
    ingest_file(engine, home, d / "early.csv", processing=Processing())
    calls, real = [], load_mod.bucket_range_sql

    def fail_fourth(lo: int, hi: int) -> str:
        calls.append(lo)
        if len(calls) == 4:
            raise RuntimeError("the engine went away")
        return real(lo, hi)

    monkeypatch.setattr(load_mod, "bucket_range_sql", fail_fourth)
    with pytest.raises(RuntimeError, match="went away"):
        ingest_file(engine, home, d / "big.csv", processing=Processing())
    assert engine.query_rows(f"SELECT source_file, count() FROM {db}.records "
                             "GROUP BY source_file") == [("early.csv", 20)]
    assert _load_tables(engine) == []
    monkeypatch.setattr(load_mod, "bucket_range_sql", real)
    m = ingest_file(engine, home, d / "big.csv", processing=Processing())
    assert (m.loaded, m.duplicates) == (100, 80)
    assert engine.query_rows(f"SELECT count() FROM {db}.records")[0][0] == 120
