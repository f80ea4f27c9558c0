"""normalize_many (a batch's small files cleaned and validated as one frame) gives what
normalize() of each file gives: the same stage rows (seq, values, findings, scores, hashes),
rejects, manifests and ingestion_log rows; sources with their own rule, files bigger than a
chunk, header-only and quarantined files included; a file that breaks fails alone (issue 16)."""

from dataclasses import asdict
from pathlib import Path

import pytest
from ingest_support import land_files

from creditlake.config import Processing
from creditlake.ingest.accounting import without_rejects
from creditlake.ingest.manifest import (
    Manifest,
    landed_path,
    load_manifest,
    stage_rows,
    stage_table,
    staged_in,
)
from creditlake.ingest.normalize import normalize, normalize_many, small_files
from creditlake.ingest.overrides import SourceOverrides, SourceRule

pytestmark = pytest.mark.integration

FILES = {
    "a.csv": "email,name,phone,country,created\nann@example.com,Ann,020 7946 0000,UK,2020-01-02\n"
             "cid@example,Cid,,US,03/04/2021\n",
    "b.csv": "email,name,phone\nann@example.com,Ann,+1 212 555 0100\nnot-an-email,X,\n"
             "bob@example.com,Bob,5550100\n",
    "local.csv": "email,name,phone\ndee@example.com,Dee,030 1234567\nnope,Y,\n",  # own rule
    "big.csv": "email,name\n" + "".join(f"p{i}@example.com,P {i}\n" for i in range(8)),
    "empty.csv": "email,name\n",
    "junk.bin": "\x00\x01\x02 not a table",
    "c.csv": "email,name,created\neve@example.com,Eve,1 Feb 2019\nfay@example.com,Fay,junk\n",
}
RULES = SourceOverrides((SourceRule(match="local.csv", default_country="DE"),))
ROWS = "seq, source_file, source_row, user_id, email, name, phone, address, city, country, " \
       "created_date, status, metadata, data_quality_score, validation_errors, record_hash"


def land_all(engine, home: Path, d: Path) -> list[str]:
    return land_files(engine, home, d, FILES, overrides=RULES)


def state(engine, home: Path, keys: list[str]) -> dict:
    db = engine.database
    out = {}
    for key in keys:
        manifest = load_manifest(home, key)
        m = asdict(manifest)
        m.pop("seconds"), m.pop("started_at"), m.pop("path"), m.pop("stage")
        exists = engine.query_rows(f"EXISTS TABLE {staged_in(engine, manifest)}")[0][0]
        out[m["source_file"]] = (m, engine.query_rows(
            f"SELECT {ROWS} FROM {stage_rows(engine, manifest)} ORDER BY seq")
            if exists else None)
    out["rejects"] = engine.query_rows(
        f"SELECT partition_key, source_file, source_row, stage, raw_row, reasons "
        f"FROM {db}.rejected_records ORDER BY partition_key, source_row")
    out["log"] = engine.query_rows(
        f"SELECT source_file, rows_read, loaded, duplicates, rejected, held, status, message, "
        f"quality_mean FROM {db}.ingestion_log FINAL ORDER BY source_file")
    return out


def reset_tables(engine) -> None:
    for t in ("rejected_records", "ingestion_log"):
        engine.command(f"TRUNCATE TABLE {engine.database}.{t}")


def test_batch_normalize_equals_file_by_file(engine, tmp_path, monkeypatch):
    monkeypatch.setattr(small_files, "CHUNK_ROWS", 6)  # several chunks; big.csv goes alone
    home1, home2 = tmp_path / "h1", tmp_path / "h2"
    keys = land_all(engine, home1, tmp_path / "in")
    with without_rejects(engine, keys):
        for key in keys:
            normalize(engine, home1, key, processing=Processing(), overrides=RULES)
    one_by_one = state(engine, home1, keys)
    reset_tables(engine)

    keys2 = land_all(engine, home2, tmp_path / "in")
    assert keys2 == keys
    with without_rejects(engine, keys):
        got = normalize_many(engine, home2, keys, processing=Processing(), overrides=RULES)
    assert all(isinstance(m, Manifest) for m in got.values()), got
    batched = state(engine, home2, keys)
    assert batched == one_by_one
    assert batched["local.csv"][1][0][9] == "DE"  # its own rule applied in the batch
    assert batched["b.csv"][0]["validation_rejected"] == 1
    assert {batched[n][0]["status"] for n in FILES} == {"normalized", "quarantined"}
    # the small files share one stage table; big.csv (more than a chunk) has its own
    staged = {n: load_manifest(home2, k).stage for n, k in zip(FILES, keys, strict=True)}
    assert staged["a.csv"] == staged["c.csv"] == staged["empty.csv"] != ""
    assert staged["big.csv"] == "" and staged["junk.bin"] == ""

    # a re-run replaces the batch's own stage rows and rejects: nothing doubled
    with without_rejects(engine, keys):
        normalize_many(engine, home2, keys, processing=Processing(), overrides=RULES)
    assert state(engine, home2, keys) == one_by_one


def test_a_broken_file_fails_alone(engine, tmp_path):
    home = tmp_path / "h"
    keys = land_all(engine, home, tmp_path / "in")
    broken = keys[1]  # b.csv: its landed data is gone
    landed_path(home, broken).unlink()
    got = normalize_many(engine, home, keys, processing=Processing(), overrides=RULES)
    assert isinstance(got[broken], FileNotFoundError)
    ok = [k for k in keys if k != broken]
    assert all(isinstance(got[k], Manifest) for k in ok)
    assert load_manifest(home, keys[0]).status == "normalized"
    assert not engine.query_rows(f"EXISTS TABLE {stage_table(engine, broken)}")[0][0]
