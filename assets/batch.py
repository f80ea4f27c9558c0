"""One run, many files: the ingest assets and checks work on every partition of their run.

A run is either one `landing_files` partition or a range of them (`creditlake ingest DIR` and
the landing sensor batch small files, see creditlake/ingest/batches.py). Each file goes
through the same stage functions on its own; in a batch, one file's error is recorded as that
file's failure (manifest + ingestion_log) and the others go on.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import dagster as dg

from creditlake.ingest.accounting import record, without_rejects
from creditlake.ingest.manifest import Manifest, Status, load_manifest
from resources import ClickHouseResource, CreditlakeHome
from resources.run_recovery import tag_run_process

# backfill_policy is "beta" in dagster 1.13; we rely on it knowingly (no warning per ingest)
warnings.filterwarnings("ignore", message="Parameter `backfill_policy`", category=dg.BetaWarning)
# Ranged runs execute as one run (the CLI and the sensor only ever send a range on purpose).
SINGLE_RUN = dg.BackfillPolicy.single_run()


def range_tags(first: str, last: str) -> dict[str, str]:
    """The run tags that make a run cover partitions first..last (Dagster has no public
    constant for them; RunRequest/execute_in_process take a range only through these)."""
    from dagster._core.storage.tags import (
        ASSET_PARTITION_RANGE_END_TAG,
        ASSET_PARTITION_RANGE_START_TAG,
    )

    return {ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last}


def run_partitions(tags: dict[str, str]) -> tuple[str, str]:
    """(first, last) partition of a run from its tags (first == last for one file)."""
    from dagster._core.storage.tags import (
        ASSET_PARTITION_RANGE_END_TAG,
        ASSET_PARTITION_RANGE_START_TAG,
        PARTITION_NAME_TAG,
    )

    if PARTITION_NAME_TAG in tags:
        return tags[PARTITION_NAME_TAG], tags[PARTITION_NAME_TAG]
    return tags[ASSET_PARTITION_RANGE_START_TAG], tags[ASSET_PARTITION_RANGE_END_TAG]


def partition_keys(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext
                   ) -> list[str]:
    return list(context.partition_keys)


def each_file(context: dg.AssetExecutionContext, clickhouse: ClickHouseResource,
              home: CreditlakeHome, step: Callable[[str], dict[str, object]], *,
              many: Callable[[list[str]], dict[str, dict[str, object] | Exception]] | None = None
              ) -> dg.MaterializeResult:
    """step(key) -> that file's metadata. One file: its metadata as before; a batch: each
    partition its own file's metadata plus the batch totals, and errors recorded per file
    instead of failing the whole run. many(keys) -> each file's metadata or its error: the
    batch's files in one go (if it raises as a whole, step runs file by file)."""
    tag_run_process(context.instance, context.run.run_id)  # a killed run can be told and reaped
    keys = partition_keys(context)
    if len(keys) == 1:
        try:
            return dg.MaterializeResult(metadata=step(keys[0]))
        except Exception as exc:
            _account_failure(context, clickhouse, home, keys[0], exc)
            raise  # the run fails as before (the UI shows the step's error)
    per_file: dict[str, dict[str, object]] = {}
    with clickhouse.open() as engine, without_rejects(engine, keys):
        outcomes: dict[str, dict[str, object] | Exception] | None = None
        if many is not None:
            try:
                outcomes = many(keys)
            except Exception as exc:  # noqa: BLE001 - retried file by file below
                context.log.warning(f"batch step failed ({type(exc).__name__}: {exc}); "
                                    "file by file")
        for key in keys:
            try:
                got = step(key) if outcomes is None else outcomes[key]
                if isinstance(got, Exception):
                    raise got
                per_file[key] = got
            except Exception as exc:  # noqa: BLE001 - this file fails, the batch goes on
                context.log.error(f"{key}: {type(exc).__name__}: {exc}")
                per_file[key] = _plain(counts_of(fail_file(clickhouse, home, key, exc)))
    return batch_result(context, per_file)


_SETTLED = (Status.LOADED, Status.BLOCKED, Status.QUARANTINED)


def _account_failure(context: dg.AssetExecutionContext, clickhouse: ClickHouseResource,
                     home: CreditlakeHome, key: str, exc: BaseException) -> None:
    """A one-file run's step raised: the file still gets its ingestion_log row (status
    failed, the error as its message) if the engine can take it. A file the step had
    already settled (loaded, held, quarantined: e.g. the wrong-format guard) keeps its row."""
    try:
        if load_manifest(home.home, key).status in _SETTLED:
            return
    except FileNotFoundError:
        pass
    try:
        fail_file(clickhouse, home, key, exc)
    except Exception as also:  # noqa: BLE001 - the step's own error is the one raised
        context.log.error(f"{key}: could not record the failure: {type(also).__name__}: {also}")


def fail_file(clickhouse: ClickHouseResource, home: CreditlakeHome, key: str,
              exc: BaseException) -> Manifest:
    try:
        m = load_manifest(home.home, key)
    except FileNotFoundError:
        entry = home.registry().get(key)
        m = Manifest(key=key, source_file=entry.name, path=entry.path, format=entry.format)
    m.status, m.message = Status.FAILED, f"{type(exc).__name__}: {exc}"[:2000]
    with clickhouse.open() as engine:
        record(engine, Path(home.home), m)
    return m


def counts_of(m: Manifest) -> dict[str, object]:
    return {"source_file": m.source_file, "status": str(m.status), "rows_read": m.rows_read,
            "rejected": m.rejected, "loaded": m.loaded, "duplicates": m.duplicates,
            "message": m.message}


def _plain(meta: dict[str, object]) -> dict[str, object]:
    """Metadata values as JSON-able scalars (tables, previews and schemas are dropped)."""
    out: dict[str, object] = {}
    for k, v in meta.items():
        v = getattr(v, "value", v)
        if isinstance(v, (str, int, float, bool)) or v is None:
            out[k] = v
    return out


def batch_result(context: dg.AssetExecutionContext,
                 per_file: dict[str, dict[str, object]]) -> dg.MaterializeResult:
    """A batch's materialization: each file's partition gets that file's own metadata, and
    every partition the batch totals (`batch_*`). An event then stays the size of one file's
    metadata: a table of all the batch's files in every partition's event made a run of N
    files store N^2 rows of metadata."""
    add_partition_metadata(context, per_file)
    files = [_plain(v) for v in per_file.values()]
    totals = {f"batch_{name}": dg.MetadataValue.int(sum(int(f.get(name) or 0) for f in files))
              for name in ("rows_read", "rejected", "loaded", "duplicates")
              if any(name in f for f in files)}
    return dg.MaterializeResult(metadata={"batch_files": dg.MetadataValue.int(len(files)),
                                          **totals})


def add_partition_metadata(context: dg.AssetExecutionContext,
                           per_partition: dict[str, dict[str, object]]) -> None:
    """context.add_asset_metadata(meta, partition_key=key) for every partition of the run in
    one go. Dagster's call re-reads every dynamic partition of the asset (all files ever
    landed) to check the key and copies the metadata gathered so far, per call: N^2 in a
    batch of N files (2.3 of 24 CPU s at 200 files). The keys here are the run's own."""
    from dagster._core.execution.context.metadata_logging import (
        AssetMetadataHandle,
        OutputMetadataAccumulator,
    )

    step = context.op_execution_context._step_execution_context  # noqa: SLF001
    run_keys = set(partition_keys(context))
    if not run_keys >= per_partition.keys():
        raise dg.DagsterInvariantViolationError(
            f"metadata for partitions outside the run: {sorted(per_partition.keys() - run_keys)}")
    asset_key = context.assets_def.key
    gathered = dict(step._metadata_accumulator.per_output_metadata)  # noqa: SLF001
    for key, meta in per_partition.items():
        handle = AssetMetadataHandle(asset_key=asset_key, partition_key=key)
        gathered[handle] = {**gathered.get(handle, {}), **meta}
    step._metadata_accumulator = OutputMetadataAccumulator(  # noqa: SLF001
        per_output_metadata=gathered)


def check_each(context: dg.AssetCheckExecutionContext,
               step: Callable[[str], dg.AssetCheckResult], *,
               blocking: bool = False) -> dg.AssetCheckResult:
    """A partitioned check over the run's files: one file as before; a batch passes when every
    file does and lists the files that did not (`failed_files`). A failed blocking check in a
    batch is reported as WARN so it does not stop the other files' load: the failing files
    themselves are held back by the check (see checks/quality.py)."""
    keys = partition_keys(context)
    if len(keys) == 1:
        return step(keys[0])
    results = {k: step(k) for k in keys}
    failed = [k for k, r in results.items() if not r.passed]
    detail = {k: _plain(dict(r.metadata or {})) for k, r in results.items() if not r.passed}
    errors = any(results[k].severity == dg.AssetCheckSeverity.ERROR for k in failed)
    return dg.AssetCheckResult(
        passed=not failed,
        severity=dg.AssetCheckSeverity.ERROR if errors and not blocking
        else dg.AssetCheckSeverity.WARN,
        description=(f"{len(failed)} of {len(keys)} files failed" if failed
                     else f"all {len(keys)} files passed"),
        metadata={"files": len(keys), "failed_files": failed,
                  "failed_detail": dg.MetadataValue.json(detail)})
