"""Run the `entity_resolve` job in-process after a load (`creditlake ingest`, `replay`, `release`,
the demo), recorded in the same Dagster instance as the sensor-driven runs, so it shows in the UI
with its own run."""

from __future__ import annotations

from typing import Any

from cli.runner import _quiet_run_config, cli_instance
from creditlake.config import Settings
from resources.run_recovery import process_tags, reap_dead_runs

# Run metadata reported back to the command line (names as in assets/entities.run_metadata).
SUMMARY_KEYS = ("mode", "model_version", "records_in", "links", "entities_changed",
                "entities_merged_away", "entities_total", "records_total", "skipped",
                "skipped_blocks", "model_estimation", "recovered_from_run", "seconds")


def resolve_with_dagster(settings: Settings, *, instance: Any = None,
                         log_level: str = "CRITICAL") -> dict[str, Any]:
    """One incremental entity run over everything loaded so far; a summary dict."""

    from assets.entities import ENTITIES_KEY, ENTITY_RESOLVE_JOB
    from definitions import make_definitions
    from resources.clickhouse import release_engines

    if instance is None:
        instance = cli_instance(settings)
    job = make_definitions(settings).resolve_job_def(ENTITY_RESOLVE_JOB)
    reap_dead_runs(instance)  # same clickhouse_load pool as the ingest job
    try:
        run = job.execute_in_process(instance=instance, run_config=_quiet_run_config(log_level),
                                     raise_on_error=False,
                                     tags={"creditlake/source": "cli", **process_tags()})
    finally:
        release_engines()  # hand the embedded engine back (e.g. to the API the demo starts)
    summary: dict[str, Any] = {"run_id": run.run_id, "success": run.success}
    for event in run.get_asset_materialization_events():
        mat = event.materialization
        if mat.asset_key == ENTITIES_KEY:
            summary.update({k: mat.metadata[k].value for k in SUMMARY_KEYS
                            if k in mat.metadata})
    if not run.success:
        summary["error"] = next(
            (e.step_failure_data.error.message.strip().splitlines()[-1]
             for e in run.all_events
             if e.is_step_failure and e.step_failure_data and e.step_failure_data.error),
            "entity run failed")
    return summary


def resolve_after_load(settings: Settings, *, loaded: int, quiet: bool,
                       verbose: bool = False) -> dict[str, Any] | None:
    """The incremental entity run after a command loaded `loaded` rows (None: nothing loaded,
    so nothing to resolve). `quiet`: no spinner (a --json command)."""
    import contextlib

    from cli.output import err_console

    if loaded <= 0:
        return None
    with contextlib.nullcontext() if quiet else err_console.status("resolving entities…"):
        return resolve_with_dagster(settings, log_level="INFO" if verbose else "CRITICAL")
