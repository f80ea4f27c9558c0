"""Many small files, one Dagster run (issue 16): each file is still its own partition with its
own manifest, ingestion_log row and checks; a bad file does not hold the others back."""

import os
import time
from pathlib import Path

import dagster as dg
import pytest

from cli.runner import ingest_with_dagster
from creditlake import samples
from creditlake.quality import reconciliation
from definitions import make_definitions
from resources import CreditlakeHome

pytestmark = pytest.mark.integration


@pytest.fixture
def instance():
    with dg.instance_for_test() as inst:
        yield inst


def write_parts(d: Path, n: int, rows: int, invalid_rate: float = 0.0) -> None:
    df = samples.styled(samples.people(n * rows, invalid_rate=invalid_rate, duplicate_rate=0),
                        "crm")
    for i in range(n):
        samples.write(df.slice(i * rows, rows), d / f"part-{i:03d}.csv", "csv")


def test_small_files_are_one_run_each_file_accounted(settings, engine, instance, tmp_path):
    d = tmp_path / "in"
    write_parts(d, 6, 50)
    (d / "bad.csv").write_text("email,name\n" + "not-an-email,X\n" * 20)  # all rows rejected
    (d / "people.jsonl").write_text('{"email": "j@example.com", "name": "J"}\n')
    results = ingest_with_dagster(settings, [d], instance=instance)
    assert len(results) == 8
    runs = {r.manifest.format: set() for r in results}
    for r in results:
        runs[r.manifest.format].add(r.run_id)
    assert len(runs["csv"]) == 1 and len(runs["jsonl"]) == 1  # one run per format
    by_name = {r.manifest.source_file: r for r in results}
    # default reject policy: its (zero) valid rows load, the failure-rate check fails loudly
    assert str(by_name["bad.csv"].manifest.status) == "loaded"
    assert by_name["bad.csv"].failed_checks == ["failure_rate"]
    assert all(str(by_name[f"part-{i:03d}.csv"].manifest.status) == "loaded"
               and by_name[f"part-{i:03d}.csv"].failed_checks == [] for i in range(6))
    log = engine.query_rows(f"SELECT partition_key, rows_read, loaded, duplicates, rejected, "
                            f"status FROM {engine.database}.ingestion_log FINAL")
    assert len(log) == 8
    assert sum(row[2] for row in log) == 301
    assert all(row[1] == row[2] + row[3] + row[4] for row in log if row[5] == "loaded")
    for r in results:  # every file reconciles on its own
        assert reconciliation(engine, r.manifest.key).passed
    # each file is its own materialized partition of the dedup asset
    mats = instance.get_materialized_partitions(dg.AssetKey(["dedup", "records"]))
    assert {r.manifest.key for r in results if str(r.manifest.status) == "loaded"} <= mats


def test_landing_sensor_batches_new_files(settings, instance, tmp_path):
    landing = settings.home / "landing"
    write_parts(landing, 4, 10)
    (landing / "one.jsonl").write_text('{"email": "s@example.com"}\n')
    old = time.time() - 60  # settled
    for f in landing.iterdir():
        os.utime(f, (old, old))
    defs = make_definitions(settings)
    sensor = defs.resolve_sensor_def("landing_sensor")
    home = CreditlakeHome(path=str(settings.home), landing_dir=str(landing))
    ctx = dg.build_sensor_context(instance=instance, resources={"home": home})
    result = sensor(ctx)
    assert len(result.run_requests) == 2
    ranged = [r for r in result.run_requests if r.partition_key_range is not None]
    assert len(ranged) == 1 and ranged[0].tags["creditlake/format"] == "csv"
    adds = {r.partitions_def_name: r.partition_keys for r in result.dynamic_partitions_requests}
    assert adds.keys() == {"landing_files", "csv_files", "jsonl_files"}
    added = adds["landing_files"]
    assert len(added) == 5 and len(adds["csv_files"]) == 4 and len(adds["jsonl_files"]) == 1
    assert {r.job_name for r in result.run_requests} == {"land_csv", "land_jsonl"}
    assert added.index(ranged[0].partition_key_range.end) \
        - added.index(ranged[0].partition_key_range.start) == 3


def test_each_landing_asset_shows_only_its_own_files(settings, instance, tmp_path):
    """Per-format partition sets (issue 14): landing/csv lists only CSV files, all of them
    materialized, while normalize/dedup cover every file; the land run is followed by the
    ingest run of exactly the same files, as `landed_sensor` requests it."""
    from assets.sensors import ingest_run_request

    d = tmp_path / "in"
    write_parts(d, 3, 10)
    (d / "one.jsonl").write_text('{"email": "j@example.com"}\n')
    results = ingest_with_dagster(settings, [d], instance=instance)
    keys = {r.manifest.format: sorted(x.manifest.key for x in results
                                      if x.manifest.format == r.manifest.format)
            for r in results}
    for fmt in ("csv", "jsonl"):
        assert sorted(instance.get_dynamic_partitions(f"{fmt}_files")) == keys[fmt]
        assert instance.get_materialized_partitions(dg.AssetKey(["landing", fmt])) \
            == set(keys[fmt])
    every = set(keys["csv"]) | set(keys["jsonl"])
    assert set(instance.get_dynamic_partitions("landing_files")) == every
    assert instance.get_materialized_partitions(dg.AssetKey(["dedup", "records"])) == every

    land = instance.get_runs(dg.RunsFilter(job_name="land_csv"))[0]
    ingest = instance.get_runs(dg.RunsFilter(tags={"creditlake/land_run": land.run_id}))[0]
    assert ingest.job_name == "ingest"
    request = ingest_run_request(land)
    assert request.tags["dagster/asset_partition_range_start"] == \
        ingest.tags["dagster/asset_partition_range_start"]
    assert request.tags["dagster/asset_partition_range_end"] == \
        ingest.tags["dagster/asset_partition_range_end"]
    one = instance.get_runs(dg.RunsFilter(job_name="land_jsonl"))[0]
    assert ingest_run_request(one).partition_key == keys["jsonl"][0]


def test_landed_sensor_requests_the_ingest_run(settings, instance, tmp_path):
    """The daemon path: a successful land run's status event makes `landed_sensor` request
    the ingest job for the same partitions."""
    defs = make_definitions(settings)
    f = tmp_path / "a.csv"
    f.write_text("email\na@x.co\n")
    ingest_with_dagster(settings, [f], instance=instance)
    land = instance.get_runs(dg.RunsFilter(job_name="land_csv"))[0]
    event = next(e for e in instance.all_logs(land.run_id)
                 if e.dagster_event and e.dagster_event.event_type
                 == dg.DagsterEventType.RUN_SUCCESS).dagster_event
    sensor = defs.resolve_sensor_def("landed_sensor")
    ctx = dg.build_run_status_sensor_context(sensor_name="landed_sensor", dagster_event=event,
                                             dagster_instance=instance, dagster_run=land)
    request = sensor(ctx)
    assert isinstance(request, dg.RunRequest)
    assert request.partition_key == land.tags["dagster/partition"]
    assert request.tags["creditlake/land_run"] == land.run_id
    assert defs.resolve_job_def("ingest").partitions_def.name == "landing_files"


def test_runs_not_started_by_the_cli_are_tagged_and_reaped_by_the_sensor(settings, instance,
                                                                          tmp_path):
    """A run the daemon or the UI launches is tagged with its process at its first step; when
    that process is gone, the landing sensor's next tick marks it failed (freeing its
    clickhouse_load slot) without any creditlake command."""
    import socket

    from assets.partitions import add_partitions
    from creditlake.ingest.registry import Registry
    from resources.run_recovery import PROCESS_TAG

    defs = make_definitions(settings)
    f = tmp_path / "a.csv"
    f.write_text("email\na@x.co\n")
    entry = Registry(settings.home).register(f, tmp_path)
    add_partitions(instance, [(entry.key, "csv")])
    run = defs.resolve_job_def("land_csv").execute_in_process(
        partition_key=entry.key, instance=instance)  # no tags, as a daemon run starts
    assert run.success and PROCESS_TAG in instance.get_run_by_id(run.run_id).tags

    dead = dg.DagsterRun(job_name="ingest", run_id="dead0000-0000-0000-0000-000000000000",
                         status=dg.DagsterRunStatus.STARTED,
                         tags={PROCESS_TAG: f"{socket.gethostname()}:999999999:1"})
    instance.add_run(dead)
    sensor = defs.resolve_sensor_def("landing_sensor")
    with dg.build_sensor_context(instance=instance,
                                 resources={"home": defs.resources["home"]}) as ctx:
        sensor(ctx)
    assert instance.get_run_by_id(dead.run_id).status == dg.DagsterRunStatus.FAILURE
