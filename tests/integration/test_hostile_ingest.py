"""Hostile files through the real ingest (Dagster assets, chDB): no crash, every file has an
ingestion_log row, every row is loaded, a duplicate or rejected with a reason, and the
reconciliation check passes. Fixtures are generated here."""

import bz2
import gzip
import json
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pytest

from cli.runner import ingest_with_dagster
from creditlake import readers
from creditlake.ingest.land import land
from creditlake.ingest.manifest import Status
from creditlake.ingest.registry import Registry
from creditlake.quality import reconciliation
from creditlake.readers.base import ReaderOptions

pytestmark = pytest.mark.integration


@pytest.fixture
def instance():
    with dg.instance_for_test() as inst:
        yield inst


def person(i: int) -> dict:
    return {"email": f"p{i}@example.org", "name": f"Person {i}", "country": "US"}


def jsonl(rows: list) -> bytes:
    return ("\n".join(json.dumps(r) for r in rows) + "\n").encode()


def deep(n: int) -> str:
    return '{"a":' * n + "1" + "}" * n


@pytest.fixture
def hostile(tmp_path: Path) -> Path:
    d = tmp_path / "in"
    d.mkdir()
    # 1,000 levels: a SIGSEGV in the JSON parser before the pre-scan
    (d / "deep_line.jsonl").write_text(
        json.dumps(person(1)) + "\n" + '{"email": "d@x.org", "x": ' + deep(1000) + "}\n"
        + json.dumps(person(2)) + "\n")
    (d / "deep_doc.json").write_text("[" + json.dumps(person(3)) + ', {"x": ' + deep(1000)
                                     + "}, " + json.dumps(person(4)) + "]")
    (d / "deep_arrays.json").write_text('{"data": ' + "[" * 5000 + "]" * 5000 + "}")
    (d / "collide.jsonl").write_text(
        '{"email": "c1@x.org", "a.b": 1, "a": {"b": 2}}\n'
        '{"email": "c2@x.org", "source_row": 7, "__row": 1, "source_file": "f", '
        '"metadata": "m", "a": {"b": 5}, "a.b": 6}\n')
    wide = {"email": "w@x.org", **{f"k{i}": i for i in range(20_000)}}
    (d / "wide.jsonl").write_bytes(jsonl([person(5), wide, person(6)]))
    (d / "good.jsonl").write_bytes(jsonl([person(i) for i in range(100, 150)]))
    return d


def log_rows(engine) -> dict[str, tuple]:
    rows = engine.query_rows(
        f"SELECT source_file, rows_read, loaded, duplicates, rejected, status, message "
        f"FROM {engine.database}.ingestion_log FINAL")
    return {r[0]: r[1:] for r in rows}


def test_hostile_json_files_are_accounted_not_fatal(settings, engine, instance, hostile):
    results = ingest_with_dagster(settings, [hostile], instance=instance, max_failure_rate=1.0)
    by_file = {r.manifest.source_file: r.as_dict() for r in results}
    assert len(by_file) == 6
    log = log_rows(engine)
    assert set(log) == set(by_file)
    for name, (read, loaded, dups, rejected, _status, _msg) in log.items():
        assert read == loaded + dups + rejected, name
    assert reconciliation(engine).passed
    assert log["deep_line.jsonl"][:4] == (3, 2, 0, 1)
    assert log["deep_doc.json"][:4] == (3, 2, 0, 1)
    assert log["deep_arrays.json"][3] == 1 and log["deep_arrays.json"][1] == 0
    assert log["collide.jsonl"][:2] == (2, 2)
    assert log["wide.jsonl"][:4] == (3, 2, 0, 1)
    assert log["good.jsonl"][1] == 50
    reasons = dict(engine.query_rows(
        f"SELECT source_file, arrayStringConcat(reasons, ';') "
        f"FROM {engine.database}.rejected_records WHERE stage = 'read'"))
    assert "nested 1,001 levels deep" in reasons["deep_line.jsonl"]
    assert "CREDITLAKE_JSON_MAX_DEPTH" in reasons["deep_doc.json"]
    assert "fields" in reasons["wide.jsonl"]
    # colliding names are kept apart, none lost: both values of a.b end up somewhere
    meta = engine.query_rows(f"SELECT email, metadata FROM {engine.database}.records "
                             "WHERE source_file = 'collide.jsonl' ORDER BY email")
    m1, m2 = (json.loads(m) for _, m in meta)
    assert sorted(v for k, v in m1.items() if k.startswith("a.b") and v) == ["1", "2"]
    assert {"source_row_source", "__row"} <= set(m2)
    assert sorted(v for k, v in m2.items() if k.startswith("a.b") and v) == ["5", "6"]


def truncated(data: bytes, compress, frac: float = 0.6) -> bytes:
    blob = compress(data)
    return blob[: int(len(blob) * frac)]


@pytest.mark.parametrize("suffix,compress", [("gz", gzip.compress), ("bz2", bz2.compress)])
def test_truncated_jsonl_keeps_records_before_the_cut(settings, engine, instance, tmp_path,
                                                      suffix, compress):
    n = 20_000
    rows = [{**person(i), "note": f"row {i} " + "x" * (i % 50)} for i in range(n)]
    path = tmp_path / f"cut.jsonl.{suffix}"
    path.write_bytes(truncated(jsonl(rows), compress))
    (r,) = ingest_with_dagster(settings, [path], instance=instance, max_failure_rate=1.0)
    d = r.as_dict()
    assert d["rows_read"] > n * 0.4, d  # most of the ~60 % before the cut
    assert d["loaded"] >= d["rows_read"] - 1  # at most the cut record is rejected
    assert "truncated" in d["message"] and "kept" in d["message"]
    assert reconciliation(engine).passed


def test_truncated_json_array_keeps_elements_before_the_cut(settings, engine, instance,
                                                            tmp_path):
    n = 5_000
    path = tmp_path / "cut.json.gz"
    path.write_bytes(truncated(json.dumps([person(i) for i in range(n)]).encode(),
                               gzip.compress))
    (r,) = ingest_with_dagster(settings, [path], instance=instance, max_failure_rate=1.0)
    d = r.as_dict()
    assert d["loaded"] > n * 0.4, d
    assert d["rows_read"] == d["loaded"] + d["rejected"]
    assert reconciliation(engine).passed


def test_json_bomb_is_refused_in_bounded_memory(settings, engine, instance, tmp_path):
    path = tmp_path / "bomb.json.gz"
    limit = settings.read_limits.max_document_bytes
    with gzip.open(path, "wb", compresslevel=9) as f:
        f.write(b"[")
        chunk = b" " * (1 << 20)
        for _ in range(limit // len(chunk) + 2):
            f.write(chunk)
        f.write(b"]")
    assert path.stat().st_size < limit // 100
    (r,) = ingest_with_dagster(settings, [path], instance=instance)
    assert r.manifest.status == Status.QUARANTINED
    assert "CREDITLAKE_JSON_MAX_DOCUMENT_BYTES" in r.as_dict()["message"]
    assert reconciliation(engine).passed


@readers.register("_failing_for_tests")
def _failing_reader(path: Path, opts: ReaderOptions) -> Iterator[pa.RecordBatch]:
    """Yields one good batch, then fails as a reader bug would."""
    yield pa.RecordBatch.from_pydict({"email": ["ok1@x.org", "ok2@x.org"],
                                      "source_row": pa.array([1, 2], pa.uint64())})
    raise RuntimeError("parser exploded\nwith a long trace")


def test_a_read_failure_is_a_failed_file_with_a_log_row(settings, engine, tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("email\nok1@x.org\nok2@x.org\n")
    entry = Registry(settings.home).register(path, settings.landing_dir)
    m = land(engine, settings.home, entry, fmt="_failing_for_tests")
    assert m.status == Status.FAILED
    assert m.message == "reading failed after record 2: parser exploded (RuntimeError)"
    log = log_rows(engine)["x.csv"]
    assert log[:5] == (2, 0, 0, 2, "failed")
    assert reconciliation(engine, entry.key).passed


def test_limits_come_from_settings(settings, engine, tmp_path, monkeypatch):
    path = tmp_path / "d.jsonl"
    path.write_bytes(jsonl([person(1), {"email": "n@x.org", "x": {"y": {"z": 1}}}]))
    monkeypatch.setenv("CREDITLAKE_JSON_MAX_DEPTH", "2")
    entry = Registry(settings.home).register(path, settings.landing_dir)
    m = land(engine, settings.home, entry)
    assert (m.rows_read, m.read_rejected) == (2, 1)


def test_hostile_mixed_directory_every_file_logged_and_reconciled(settings, engine, instance,
                                                                  tmp_path):
    import io
    import zipfile

    d = tmp_path / "mixed"
    d.mkdir()
    lines = ["email,name"] + [f"m{i}@x.org,M {i}" for i in range(1, 501)]
    lines[101] = 'm101@x.org,"M 101'
    (d / "quote.csv").write_text("\n".join(lines) + "\n")
    blob = gzip.compress(("\n".join(["email,name"] + [f"g{i}@x.org,G {i}" for i in range(3000)])
                          + "\n").encode())
    (d / "cut.csv.gz").write_bytes(blob[: int(len(blob) * 0.6)])
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("xl/people.csv", "email,name\n" + "".join(f"z{i}@x.org,Z {i}\n"
                                                             for i in range(20)))
    (d / "xl_paths.zip").write_bytes(buf.getvalue())
    (d / "deep_line.jsonl").write_text('{"email": "d@x.org", "x": ' + deep(1000) + "}\n"
                                       + json.dumps(person(9)) + "\n")
    results = ingest_with_dagster(settings, [d], instance=instance, max_failure_rate=1.0)
    by_file = {r.manifest.source_file: r.as_dict() for r in results}
    log = log_rows(engine)
    assert set(log) == set(by_file) == {"quote.csv", "cut.csv.gz", "xl_paths.zip",
                                        "deep_line.jsonl"}
    assert reconciliation(engine).passed
    assert log["quote.csv"][:4] == (500, 499, 0, 1)
    assert log["xl_paths.zip"][1] == 20
    assert log["cut.csv.gz"][1] > 1000 and "truncated" in log["cut.csv.gz"][5]
    assert log["deep_line.jsonl"][:4] == (2, 1, 0, 1)


def test_a_step_that_fails_says_why_in_the_files_message(settings, engine, instance, tmp_path,
                                                          monkeypatch):
    """A file whose normalize step raises (a full disk, a lost engine): its result and its
    ingestion_log row carry the error itself, not Dagster's wrapper around it."""
    from creditlake.ingest.normalize import polars

    def broken(*_a, **_k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(polars, "normalize", broken)
    path = tmp_path / "one.csv"
    path.write_text("email\na@example.org\n")
    (r,) = ingest_with_dagster(settings, [path], instance=instance, max_failure_rate=1.0)
    d = r.as_dict()
    assert d["status"] == Status.FAILED.value
    assert "No space left on device" in d["message"], d["message"]
    assert "No space left on device" in log_rows(engine)["one.csv"][5]
    assert reconciliation(engine).passed  # its row is held, not lost
