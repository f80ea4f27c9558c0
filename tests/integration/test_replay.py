"""Dead-letter replay and release end to end on real chDB: rows rejected for an unmapped
identity column load after a mapping override and `replay`; a second replay changes nothing;
rows that still fail keep their new reasons; `release` loads a blocked file; both commands
through the CLI, each followed by the incremental entity run (`--no-resolve` skips it).
Fixtures are generated here."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest
from cli_support import invoke_cli

from cli.runner import ingest_with_dagster
from creditlake.ingest.overrides import SourceOverrides
from creditlake.ingest.replay import replay
from creditlake.quality import reconciliation

pytestmark = pytest.mark.integration


@pytest.fixture
def instance():
    with dg.instance_for_test() as inst:
        yield inst


def members(path: Path, n: int, blank_ids: int) -> Path:
    """A CRM export whose only identity is an id column no synonym knows (`member_ref`)."""
    lines = ["member_ref,first_name,last_name,city"]
    lines += [f"{'' if i < blank_ids else f'M-{i:05d}'},Ann{i},Lee,Leeds" for i in range(n)]
    path.write_text("\n".join(lines) + "\n")
    return path


def state(engine, key: str) -> tuple:
    db = engine.database
    log = engine.query_rows(f"SELECT rows_read, loaded, duplicates, rejected, held, status FROM "
                            f"{db}.ingestion_log FINAL WHERE partition_key = {{k:String}}",
                            {"k": key})[0]
    rej = engine.query_rows(f"SELECT count() FROM {db}.rejected_records "
                            "WHERE partition_key = {k:String}", {"k": key})[0][0]
    rec = engine.query_rows(f"SELECT count() FROM {db}.records WHERE ingest_key = {{k:String}}",
                            {"k": key})[0][0]
    return log, rej, rec


def test_replay_after_override_loads_once(settings, engine, instance, tmp_path):
    f = members(tmp_path / "members.csv", 200, blank_ids=5)
    (r,) = ingest_with_dagster(settings, [f], instance=instance)
    key = r.manifest.key
    assert (r.manifest.loaded, r.manifest.rejected) == (0, 200)  # no identity mapped
    assert r.failed_checks == ["failure_rate"]

    # nothing changed yet: replay re-rejects every row, counts stay
    (res,) = replay(engine, settings.home, [key])
    assert (res.replayed, res.loaded, res.still_rejected) == (200, 0, 200)
    assert state(engine, key) == ((200, 0, 0, 200, 0, "loaded"), 200, 0)

    mappings = settings.home / "mappings.yaml"
    mappings.write_text("sources:\n  - match: 'members*.csv'\n    columns: {member_ref: user_id}\n")
    overrides = SourceOverrides.from_yaml(mappings)
    (res,) = replay(engine, settings.home, [key], overrides=overrides)
    assert (res.replayed, res.loaded, res.duplicates, res.still_rejected) == (200, 195, 0, 5)
    assert state(engine, key) == ((200, 195, 0, 5, 0, "loaded"), 5, 195)
    reasons = engine.query_rows(f"SELECT DISTINCT arrayStringConcat(reasons, '; ') FROM "
                                f"{engine.database}.rejected_records")
    assert len(reasons) == 1 and "identity" in reasons[0][0]
    loaded = engine.query_rows(f"SELECT min(user_id), max(name) FROM {engine.database}.records")
    assert loaded == [("M-00005", "Ann99 Lee")]
    assert reconciliation(engine).passed

    for _ in range(2):  # again: the moved rows are gone, the rest still fail: nothing changes
        (res,) = replay(engine, settings.home, [key], overrides=overrides)
        assert (res.replayed, res.loaded, res.still_rejected) == (5, 0, 5)
        assert state(engine, key) == ((200, 195, 0, 5, 0, "loaded"), 5, 195)
    assert replay(engine, settings.home, since=datetime.now(UTC) + timedelta(hours=1)) == []
    assert reconciliation(engine).passed


def _cli(settings, *args: str):
    res = invoke_cli(settings, *args)
    return res.exit_code, res.stdout, res.stderr


def _entities(engine) -> int:
    """Records resolved into entities so far."""
    return engine.query_rows(f"SELECT count() FROM {engine.database}.entities FINAL")[0][0]


def test_replay_and_release_commands(settings, engine, tmp_path):
    f = members(tmp_path / "members.csv", 60, blank_ids=0)
    code, out, _ = _cli(settings, "ingest", str(f), "--json", "--no-resolve")
    assert code == 3 and json.loads(out)["files"][0]["status"] == "loaded"  # 0 valid rows
    (settings.home / "mappings.yaml").write_text(
        "sources:\n  - match: 'members*.csv'\n    columns: {member_ref: user_id}\n")
    code, out, err = _cli(settings, "replay", "members.csv", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["totals"] == {"replayed": 60, "loaded": 60, "duplicates": 0, "still_rejected": 0}
    # the loaded rows are resolved right away (one incremental entity run, outside Dagster)
    assert doc["entity"]["success"] and doc["entity"]["records_in"] == 60
    assert _entities(engine) == 60
    code, out, _ = _cli(settings, "replay", "--all", "--json")
    assert code == 0 and json.loads(out)["totals"]["replayed"] == 0
    assert json.loads(out)["entity"] is None  # nothing loaded: no entity run

    held = tmp_path / "held.csv"
    held.write_text("email,name\n" + "".join(f"h{i}@x.co,H\n" for i in range(90))
                    + ",NoId\n" * 10)
    code, out, _ = _cli(settings, "ingest", str(held), "--json", "--no-resolve",
                        "--block-on-rejects")
    doc = json.loads(out)["files"][0]
    assert code == 2 and (doc["status"], doc["held"]) == ("blocked", 90)
    code, out, err = _cli(settings, "release", doc["partition_key"], "--json")
    assert code == 0, err
    released = json.loads(out)
    assert {k: released[k] for k in ("status", "loaded", "rejected", "held")} == {
        "status": "loaded", "loaded": 90, "rejected": 10, "held": 0}
    assert released["entity"]["success"] and released["entity"]["records_in"] == 90
    assert _entities(engine) == 150
    code, _, err = _cli(settings, "release", doc["partition_key"])
    assert code == 1 and "not blocked" in err
    assert reconciliation(engine).passed
    # the Dagster UI is told too: the CLI records the jobs' events in the instance
    records = dg.AssetKey(["dedup", "records"])
    with dg.DagsterInstance.from_config(str(settings.home / "dagster")) as inst:
        mat = inst.get_latest_materialization_event(records).asset_materialization
        assert mat.partition == doc["partition_key"] and mat.metadata["released"].value
        assert mat.metadata["loaded"].value == 90 and mat.metadata["held"].value == 0
        seen = inst.fetch_materializations(records, limit=10).records
        replayed = [e.asset_materialization.metadata for e in seen
                    if "replayed" in e.asset_materialization.metadata]
        assert [(m["replayed"].value, m["loaded"].value) for m in replayed] == [(60, 60)]


def test_replay_and_release_as_dagster_jobs(settings, engine, instance, tmp_path):
    from definitions import make_definitions

    f = members(tmp_path / "members.csv", 40, blank_ids=0)
    (r,) = ingest_with_dagster(settings, [f], instance=instance)
    (settings.home / "mappings.yaml").write_text(
        "sources:\n  - match: 'members*.csv'\n    columns: {member_ref: user_id}\n")
    held = tmp_path / "held.csv"
    held.write_text("email,name\n" + "".join(f"h{i}@x.co,H\n" for i in range(90))
                    + ",NoId\n" * 10)
    (b,) = ingest_with_dagster(settings, [held], instance=instance, block_on_rejects=True)
    assert b.manifest.status == "blocked"
    defs = make_definitions(settings)
    run = defs.resolve_job_def("replay_rejects").execute_in_process(
        instance=instance, run_config={"ops": {"replay_rejected_rows": {"config": {
            "partition_key": r.manifest.key}}}})
    assert run.success and run.output_for_node("replay_rejected_rows")["loaded"] == 40
    # rows loaded: a materialization of the file's dedup/records partition (entity automation)
    mats = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
    assert [m.dagster_event.partition for m in mats] == [r.manifest.key]
    run = defs.resolve_job_def("release_held").execute_in_process(
        instance=instance, run_config={"ops": {"release_held_rows": {"config": {
            "partition_key": b.manifest.key}}}})
    assert run.success and run.output_for_node("release_held_rows")["loaded"] == 90
    mats = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
    assert [m.dagster_event.partition for m in mats] == [b.manifest.key]
    assert reconciliation(engine).passed
