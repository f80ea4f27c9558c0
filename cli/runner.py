"""Run the Dagster ingest job for files given on the command line (same assets as the
sensor), recording runs in the instance under $CREDITLAKE_HOME/dagster so they show in the UI."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from creditlake.config import Settings
from creditlake.ingest import batches
from creditlake.ingest.accounting import log_message
from creditlake.ingest.manifest import Manifest, Status, load_manifest
from creditlake.ingest.pipeline import expand_paths
from creditlake.ingest.registry import Registry
from resources.run_recovery import process_tags, reap_dead_runs

# Dagster's SQLite storage with kept-open connections (resources/dagster_storage.py)
DAGSTER_YAML = """\
telemetry:
  enabled: false
concurrency:
  pools:
    default_limit: 1
storage:
  custom:
    module: resources.dagster_storage
    class: LocalStorage
    config:
      base_dir:
        env: DAGSTER_HOME
"""
# What earlier versions wrote: replaced by DAGSTER_YAML (same files on disk, same history)
_OLD_DAGSTER_YAMLS = ("telemetry:\n  enabled: false\nconcurrency:\n  pools:\n"
                      "    default_limit: 1\n",)


@dataclass
class FileResult:
    manifest: Manifest
    run_id: str
    run_ok: bool
    failed_checks: list[str]  # ERROR severity: make `creditlake ingest` exit non-zero
    warned_checks: list[str] = dataclasses.field(default_factory=list)  # WARN severity

    def as_dict(self) -> dict[str, object]:
        m = self.manifest
        return {"source_file": m.source_file, "format": m.format, "partition_key": m.key,
                "rows_read": m.rows_read, "loaded": m.loaded, "duplicates": m.duplicates,
                "rejected": m.rejected, "held": m.held, "status": str(m.status),
                "message": log_message(m),
                "quality_mean": round(m.quality_mean, 4),
                "seconds": round(sum(m.seconds.values()), 3),
                "stage_seconds": {k: round(v, 3) for k, v in m.seconds.items()},
                "run_id": self.run_id,
                "failed_checks": self.failed_checks, "warned_checks": self.warned_checks}


def dagster_home(settings: Settings) -> Path:
    """DAGSTER_HOME if set, else $CREDITLAKE_HOME/dagster (created with a dagster.yaml)."""
    if os.environ.get("DAGSTER_HOME"):
        return Path(os.environ["DAGSTER_HOME"])
    home = settings.home / "dagster"
    home.mkdir(parents=True, exist_ok=True)
    cfg = home / "dagster.yaml"
    if not cfg.exists() or cfg.read_text() in _OLD_DAGSTER_YAMLS:
        cfg.write_text(DAGSTER_YAML)
    os.environ["DAGSTER_HOME"] = str(home)
    return home


# The command's own runs: its progress is drawn on the terminal, and Dagster's compute-log
# capture would send that through a file, a `tail -F` and a watcher Python process per stream
# and run (8 processes for one small file) only to keep progress-bar redraws as the runs'
# stdout/stderr. Event logs, assets, partitions and checks are stored as before.
NO_CAPTURE = {"compute_logs": {"module": "dagster._core.storage.noop_compute_log_manager",
                               "class": "NoOpComputeLogManager"}}


def cli_instance(settings: Settings):  # -> dg.DagsterInstance (dagster imported lazily)
    """The home's Dagster instance (dagster_home) for runs this process executes itself."""
    from cli.startup import long_lived

    with long_lived():  # Dagster's storage modules stay for the whole process
        import dagster as dg
        from dagster._core.instance.ref import InstanceRef

        home = dagster_home(settings)
        return dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home),
                                                                overrides=NO_CAPTURE))


def report_to_dagster(settings: Settings, events: list) -> None:
    """Record events a CLI command caused outside a run (release, replay) in the instance
    the UI reads, as runless events."""
    import dagster as dg

    dagster_home(settings)
    with dg.DagsterInstance.get() as instance:
        for event in events:
            instance.report_runless_asset_event(event)


def ingest_with_dagster(settings: Settings, paths: Iterable[Path], *, progress=None,
                        instance=None, max_failure_rate: float | None = None,
                        block_on_rejects: bool | None = None,
                        on_file=None, log_level: str = "CRITICAL") -> list[FileResult]:
    from cli.startup import long_lived
    from resources.clickhouse import ClickHouseResource, open_in_background, release_engines

    files = expand_paths(paths)
    # the runs' engine opens while Dagster's storage and the definitions load (~0.2 s of chDB
    # start-up, mostly outside the GIL)
    opening = open_in_background(ClickHouseResource.from_settings(settings)) if files else None
    try:
        if instance is None:
            instance = cli_instance(settings)
        with long_lived():  # the definitions live for the whole process
            from definitions import make_definitions

            defs = make_definitions(settings, progress=progress,
                                    max_failure_rate=max_failure_rate,
                                    block_on_rejects=block_on_rejects)
        registry = Registry(settings.home)
        results: list[FileResult] = []
        reap_dead_runs(instance)  # a killed earlier run must not hold the load pool's slot
        _run_files(files, registry, settings, instance, defs, results, on_file, log_level)
    finally:
        if opening is not None:
            opening.join()
        release_engines()  # hand the embedded engine back (e.g. to the API the demo starts)
    return results


def _run_files(files, registry, settings, instance, defs, results, on_file, log_level) -> None:
    """Register every file, then per batch (creditlake/ingest/batches.py) run its format's
    land job and the ingest job: a run over a range of partitions for small files of one
    format, one run per big file. Each file still gets its own partition, manifest,
    ingestion_log row and checks."""
    from assets.partitions import add_partitions, landing_files

    entries = {}
    for path in files:
        entry = registry.register(path, settings.landing_dir)
        entries.setdefault(entry.key, entry)  # the same file given twice is ingested once
    items = [batches.Item(e.key, e.format, e.size) for e in entries.values()]
    add_partitions(instance, ((i.key, i.format) for i in batches.registration_order(items)))
    order = instance.get_dynamic_partitions(landing_files.name)
    for batch in batches.plan_batches(items, order):
        if on_file:
            for item in batch:
                on_file(entries[item.key], item.format)
        _run_batch(batch, entries, settings, instance, defs, results, log_level)


def run_batch_jobs(defs, instance, keys: list[str], fmt: str, *, tags: dict[str, str],
                   run_config: dict | None = None, raise_on_error: bool = False):
    """The land run of the files, then (if it succeeded) their ingest run; returns the last
    run's result. Same jobs and runs as the landing sensors request."""
    from assets.batch import range_tags
    from assets.landing import land_job_name

    if len(keys) > 1:
        tags = tags | range_tags(keys[0], keys[-1])
    key = keys[0] if len(keys) == 1 else None
    run = defs.resolve_job_def(land_job_name(fmt)).execute_in_process(
        partition_key=key, instance=instance, run_config=_quiet_config(run_config),
        raise_on_error=raise_on_error, tags=tags)
    if not run.success:
        return run
    return defs.resolve_job_def("ingest").execute_in_process(
        partition_key=key, instance=instance, run_config=run_config,
        raise_on_error=raise_on_error, tags=tags | {"creditlake/land_run": run.run_id})


def _run_batch(batch, entries, settings, instance, defs, results, log_level) -> None:
    import dagster as dg

    tags = {"creditlake/source": "cli", "creditlake/format": batch[0].format, **process_tags()}
    run = run_batch_jobs(defs, instance, [i.key for i in batch], batch[0].format, tags=tags,
                         run_config=_quiet_run_config(log_level))
    failed: dict[str, list[str]] = {item.key: [] for item in batch}  # ERROR severity
    warned: dict[str, list[str]] = {item.key: [] for item in batch}  # WARN severity
    for e in run.all_events:
        if e.event_type != dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            continue
        check = e.asset_check_evaluation_data
        if check.passed:
            continue
        into = failed if check.severity == dg.AssetCheckSeverity.ERROR else warned
        named = check.metadata.get("failed_files")  # a batch names its failing files
        for key in (named.value if named is not None else list(failed)):
            into.setdefault(key, []).append(check.check_name)
    for item in batch:
        entry = entries[item.key]
        try:
            manifest = load_manifest(settings.home, entry.key)
        except FileNotFoundError:
            manifest = Manifest(key=entry.key, source_file=entry.name, path=entry.path,
                                format=entry.format, status=Status.FAILED,
                                message=_first_error(run) or "landing step failed")
        final = (Status.BLOCKED, Status.QUARANTINED) + ((Status.LOADED,) if len(batch) > 1
                                                         else ())  # a batch loads file by file
        if not run.success and manifest.status not in final:
            manifest.status = Status.FAILED
            manifest.message = manifest.message or _first_error(run) or "run failed"
        results.append(FileResult(manifest, run.run_id, run.success, failed[item.key],
                                  warned[item.key]))


def _quiet_config(run_config: dict | None) -> dict | None:
    """The land job has no normalize op: pass it only the loggers part of a run config."""
    return {"loggers": run_config["loggers"]} if run_config and "loggers" in run_config else None


def _quiet_run_config(level: str) -> dict:
    """The CLI prints its own summary; Dagster's console log only at `level` and above (the
    full event log is still stored in the instance for the UI)."""
    return {"loggers": {"console": {"config": {"log_level": level}}}}


def _first_error(run) -> str | None:
    """The first failed step's own error: Dagster wraps it ("Error occurred while executing
    op ...:"), so its wrappers are unwrapped down to the first error of ours (whose own
    causes stay hidden: EngineError carries the redacted text of the driver's)."""
    for e in run.all_events:
        if e.is_step_failure and e.step_failure_data and e.step_failure_data.error:
            error = e.step_failure_data.error
            while error.cause is not None and error.cls_name.startswith("Dagster"):
                error = error.cause
            return error.message.strip().splitlines()[-1]
    return None
