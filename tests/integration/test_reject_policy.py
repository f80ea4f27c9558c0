"""The reject policy end to end through the Dagster assets on real chDB: by default valid rows
load and the failure-rate check fails loudly; `on_reject: block` (mappings.yaml) or
--block-on-rejects holds them; `release` loads them; every status reconciles (held included);
exit codes of `creditlake ingest`. Fixtures are generated here."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pytest
from cli_support import invoke_cli

from cli.runner import ingest_with_dagster
from creditlake.clickhouse import ClickHouseEngine
from creditlake.clickhouse.ddl import INGESTION_LOG_COLUMNS, migrate
from creditlake.ingest.release import NotBlocked, release
from creditlake.quality import reconciliation

pytestmark = pytest.mark.integration


@pytest.fixture
def instance():
    with dg.instance_for_test() as inst:
        yield inst


def export(path: Path, n: int, bad_share: float, offset: int = 0) -> Path:
    """n rows, int(n * bad_share) of them without any identity (no e-mail, phone or id)."""
    bad = int(n * bad_share)
    step = n // bad if bad else n + 1
    lines = ["id,email,name,phone,country"]
    for i in range(n):
        if bad and i % step == step - 1 and i // step < bad:
            lines.append(f",not-an-email,Nobody {i},,US")
        else:
            j = i + offset
            lines.append(f"{j},user{j}@example.com,Person {j},+1 212 555 {j % 10000:04d},US")
    path.write_text("\n".join(lines) + "\n")
    return path


def log_row(engine, key: str) -> dict:
    cols = ("status", "rows_read", "loaded", "duplicates", "rejected", "held")
    (row,) = engine.query_rows(f"SELECT {', '.join(cols)} FROM {engine.database}.ingestion_log "
                               "FINAL WHERE partition_key = {k:String}", {"k": key})
    return dict(zip(cols, row, strict=True))


def balanced(d: dict) -> bool:
    return d["rows_read"] == d["loaded"] + d["duplicates"] + d["rejected"] + d["held"]


def test_default_loads_valid_rows_and_fails_the_check_visibly(settings, engine, instance,
                                                              tmp_path):
    f = export(tmp_path / "export.csv", 4000, 0.005)  # 20 identity-less rows: 0.5 %
    (r,) = ingest_with_dagster(settings, [f], instance=instance)
    d = r.as_dict()
    assert (d["status"], d["loaded"], d["rejected"], d["held"]) == ("loaded", 3980, 20, 0)
    assert r.failed_checks == ["failure_rate"] and r.run_ok  # ERROR, but not a failed run
    assert "valid rows loaded" in d["message"]
    assert balanced(d) and balanced(log_row(engine, r.manifest.key))
    assert reconciliation(engine).passed
    # the materializations are not failed by the check: both assets materialized
    mats = {e.dagster_event.asset_key.to_user_string() for e in instance.all_logs(
        r.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)}
    assert {"normalize/contacts", "dedup/records"} <= mats


def test_one_bad_row_in_a_small_file_is_not_a_failure(settings, engine, instance, tmp_path):
    f = export(tmp_path / "small.csv", 50, 0.02)  # 1 reject: 2 %, below the minimum count
    (r,) = ingest_with_dagster(settings, [f], instance=instance)
    assert (r.manifest.status, r.manifest.loaded, r.manifest.rejected) == ("loaded", 49, 1)
    assert r.failed_checks == []


def test_on_reject_block_holds_then_release_loads(settings, engine, instance, tmp_path):
    (settings.home / "mappings.yaml").write_text(
        "sources:\n  - match: 'frozen*.csv'\n    on_reject: block\n")
    f = export(tmp_path / "frozen.csv", 4000, 0.005)
    (r,) = ingest_with_dagster(settings, [f], instance=instance)
    d = r.as_dict()
    assert (d["status"], d["loaded"], d["rejected"], d["held"]) == ("blocked", 0, 20, 3980)
    assert r.failed_checks == ["failure_rate"]
    assert balanced(d) and balanced(log_row(engine, r.manifest.key))
    assert reconciliation(engine).passed  # covers the blocked file: held = its stage table
    assert engine.query_rows(f"SELECT count() FROM {engine.database}.records")[0][0] == 0
    # another source without the rule loads by default
    open_file = export(tmp_path / "open.csv", 2000, 0.01, offset=50_000)
    (other,) = ingest_with_dagster(settings, [open_file], instance=instance)
    assert other.manifest.status == "loaded"

    m = release(engine, settings.home, r.manifest.key)
    assert (m.status, m.loaded, m.rejected, m.held) == ("loaded", 3980, 20, 0)
    assert balanced(log_row(engine, r.manifest.key)) and reconciliation(engine).passed
    with pytest.raises(NotBlocked):
        release(engine, settings.home, r.manifest.key)


def test_a_blocked_file_in_a_batch_is_held_then_released(settings, engine, instance,
                                                         tmp_path):
    """In a batch run (its files share a stage table) the blocked file keeps its own held
    rows, the other loads, and release loads the held ones."""
    (settings.home / "mappings.yaml").write_text(
        "sources:\n  - match: 'frozen*.csv'\n    on_reject: block\n")
    files = [export(tmp_path / "frozen.csv", 4000, 0.005),
             export(tmp_path / "open.csv", 2000, 0.01, offset=50_000)]
    by_name = {r.manifest.source_file: r for r in
               ingest_with_dagster(settings, files, instance=instance)}
    assert len({r.run_id for r in by_name.values()}) == 1  # one batch run
    frozen, other = by_name["frozen.csv"], by_name["open.csv"]
    assert (frozen.manifest.status, frozen.manifest.held) == ("blocked", 3980)
    assert other.manifest.status == "loaded" and other.manifest.loaded > 0
    assert reconciliation(engine).passed  # the held rows are in its own stage table
    m = release(engine, settings.home, frozen.manifest.key)
    assert (m.status, m.loaded, m.rejected, m.held) == ("loaded", 3980, 20, 0)
    assert reconciliation(engine).passed


def test_block_on_rejects_for_a_run(settings, engine, instance, tmp_path):
    f = export(tmp_path / "any.csv", 2000, 0.01)
    (r,) = ingest_with_dagster(settings, [f], instance=instance, block_on_rejects=True)
    assert (r.manifest.status, r.manifest.held) == ("blocked", 1980)
    assert reconciliation(engine, r.manifest.key).passed


def test_held_column_is_added_to_an_existing_home(chdb_path):
    """A home created before `held` existed gets the column (0 for old rows) on migrate."""
    eng = ClickHouseEngine(f"chdb://{chdb_path}", "t_old_home_log")
    try:
        eng.command(f"CREATE DATABASE IF NOT EXISTS {eng.database}")
        old = ", ".join(f"{n} {t}" for n, t in INGESTION_LOG_COLUMNS if n != "held")
        eng.command(f"CREATE TABLE {eng.database}.ingestion_log ({old}) "
                    "ENGINE = ReplacingMergeTree(finished_at) ORDER BY partition_key")
        eng.command(f"INSERT INTO {eng.database}.ingestion_log (partition_key, rows_read, "
                    "loaded, status) VALUES ('old@1', 5, 5, 'loaded')")
        migrate(eng)
        migrate(eng)  # idempotent
        assert eng.query_rows(f"SELECT held, loaded FROM {eng.database}.ingestion_log")[0] \
            == (0, 5)
    finally:
        eng.command(f"DROP DATABASE IF EXISTS {eng.database}")
        eng.close()


def test_ingest_exit_codes_and_json(settings, engine, tmp_path):
    from cli.ingest import EXIT_CHECKS, EXIT_FILES, EXIT_OK

    clean = export(tmp_path / "clean.csv", 300, 0.0)
    noisy = export(tmp_path / "noisy.csv", 2000, 0.01)
    prose = tmp_path / "notes.txt"
    prose.write_text("Call Ann back on Monday about the renewal.\nShe prefers e-mail.\n")
    cases = [((clean,), (), EXIT_OK), ((noisy,), (), EXIT_CHECKS),
             ((noisy,), ("--block-on-rejects",), EXIT_FILES), ((prose,), (), EXIT_FILES)]
    for files, flags, code in cases:
        res = invoke_cli(settings, "ingest", *map(str, files), "--json", "--no-resolve", *flags)
        assert res.exit_code == code, (files, flags, res.stdout, res.stderr, res.exception)
        doc = json.loads(res.stdout)  # the JSON is printed in every case
        for f in doc["files"]:
            assert f["rows_read"] == f["loaded"] + f["duplicates"] + f["rejected"] + f["held"]
        assert doc["totals"]["held"] == sum(f["held"] for f in doc["files"])


def test_records_row_count_is_the_tables_total(settings, engine, instance, tmp_path):
    first = export(tmp_path / "first.csv", 300, 0.0)
    second = export(tmp_path / "second.csv", 200, 0.0, offset=10_000)
    ingest_with_dagster(settings, [first], instance=instance)
    (r,) = ingest_with_dagster(settings, [second], instance=instance)
    (mat,) = [e.dagster_event.event_specific_data.materialization for e in instance.all_logs(
        r.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
        if e.dagster_event.asset_key.to_user_string() == "dedup/records"]
    meta = {k: v.value for k, v in mat.metadata.items()}
    assert (meta["dagster/row_count"], meta["loaded"], meta["held"]) == (500, 200, 0)
