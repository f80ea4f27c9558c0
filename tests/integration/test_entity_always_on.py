"""Entity resolution runs by itself after loads: the Dagster automation condition on the
entity assets, and `creditlake ingest` (one entity run after the files, unless --no-resolve)."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from assets.dedup import RECORDS_KEY
from assets.entities import ENTITIES_KEY, GOLDEN_KEY
from assets.partitions import landing_files
from cli.launcher import PROJECT_ROOT
from creditlake.config import load_settings
from definitions import make_definitions

pytestmark = pytest.mark.integration
CREDITLAKE = str(Path(sys.executable).parent / "creditlake")


def test_after_load_condition_requests_one_run_for_a_burst_of_loads() -> None:
    warnings.filterwarnings("ignore", category=dg.PreviewWarning)
    defs = make_definitions(load_settings())
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(landing_files.name, ["a@1", "b@1", "c@1"])
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    assert result.total_requested == 0  # nothing loaded yet
    for key in ("a@1", "b@1"):  # c@1 never loads (e.g. blocked): must not hold the others
        instance.report_runless_asset_event(dg.AssetMaterialization(RECORDS_KEY, partition=key))
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance,
                                               cursor=result.cursor)
    assert result.get_num_requested(ENTITIES_KEY) == 1
    assert result.get_num_requested(GOLDEN_KEY) == 1
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance,
                                               cursor=result.cursor)
    assert result.total_requested == 0  # handled: no second run for the same loads
    sensor = defs.get_sensor_def("entity_after_load")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING


def _env(home: Path) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("CREDITLAKE_", "DAGSTER_"))}
    env.update(CREDITLAKE_HOME=str(home), NO_COLOR="1")
    return env


PEOPLE = [
    ("C1", "Jonathan Smith", "jon.smith@gmail.com", "+44 20 7946 0018", "12 High Street"),
    ("C2", "Maria Garcia", "maria.garcia@yahoo.com", "+34 912 345 678", "4 Calle Mayor"),
    ("C3", "Wei Chen", "wei.chen@outlook.com", "+1 415 555 0142", "77 Market St"),
]


def _write(path: Path, id_header: str, ids: bool) -> Path:
    pl.DataFrame({
        id_header: [p[0] if ids else f"X{i}" for i, p in enumerate(PEOPLE)],
        "Name": [p[1] for p in PEOPLE], "Email": [p[2] for p in PEOPLE],
        "Phone": [p[3] for p in PEOPLE], "Address": [p[4] for p in PEOPLE],
        "City": ["London", "Madrid", "San Francisco"], "Country": ["GB", "ES", "US"],
    }).write_csv(path)
    return path


def test_cli_ingest_resolves_after_the_files_unless_no_resolve(tmp_path: Path,
                                                               monkeypatch) -> None:
    env = _env(tmp_path / "home")
    first = _write(tmp_path / "crm.csv", "Customer ID", ids=True)
    r = subprocess.run([CREDITLAKE, "ingest", str(first), "--json"], env=env,
                       capture_output=True, text=True, timeout=300, cwd=PROJECT_ROOT)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    entity = out["entity"]
    assert entity["success"] and entity["records_in"] == out["totals"]["loaded"] == 3
    assert entity["entities_total"] == 3

    second = _write(tmp_path / "reexport.csv", "Ref", ids=False)
    r = subprocess.run([CREDITLAKE, "ingest", str(second), "--json", "--no-resolve"], env=env,
                       capture_output=True, text=True, timeout=300, cwd=PROJECT_ROOT)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["entity"] is None

    # The entity run is a Dagster run of its own in the home's instance (shows in the UI).
    # the home's dagster.yaml names its storage directory through DAGSTER_HOME, as every
    # Dagster process started for it (creditlake dev/demo/ingest) has it set
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home" / "dagster"))
    instance = dg.DagsterInstance.from_config(str(tmp_path / "home" / "dagster"))
    try:
        event = instance.get_latest_materialization_event(ENTITIES_KEY)
        assert event is not None
        run = instance.get_run_by_id(event.run_id)
        assert run is not None and run.job_name == "entity_resolve"
    finally:
        instance.dispose()
