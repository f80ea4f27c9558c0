"""Many small files, one Dagster run (issue 16): each file is still its own partition with its
own manifest, ingestion_log row and checks; a bad file does not hold the others back."""

import os
import time
from pathlib import Path

import dagster as dg
import pytest

from assets.sensors import build_landing_sensor
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
    sensor = build_landing_sensor(defs.resolve_job_def("ingest"))
    home = CreditlakeHome(path=str(settings.home), landing_dir=str(landing))
    ctx = dg.build_sensor_context(instance=instance, resources={"home": home})
    result = sensor(ctx)
    assert len(result.run_requests) == 2
    ranged = [r for r in result.run_requests if r.partition_key_range is not None]
    assert len(ranged) == 1 and ranged[0].tags["creditlake/format"] == "csv"
    added = result.dynamic_partitions_requests[0].partition_keys
    assert len(added) == 5
    assert added.index(ranged[0].partition_key_range.end) \
        - added.index(ranged[0].partition_key_range.start) == 3
