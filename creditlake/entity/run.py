"""One entity run as the platform does it (the Dagster asset, the CLI, the benchmarks):
re-estimate the model when the data asks for it (creditlake/entity/estimate.py), then resolve
incrementally, or everything again when the model changed or an earlier run died part-way
(creditlake/entity/recovery.py). DuckDB spills into $CREDITLAKE_HOME/tmp/duckdb/<run id>,
removed when the run ends (creditlake/entity/duck.py)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

from creditlake.clickhouse.base import Engine
from creditlake.entity.duck import run_spill_dir, spill_directory
from creditlake.entity.estimate import Estimation, maybe_reestimate
from creditlake.entity.model import EntityModel, load_model
from creditlake.entity.recovery import in_progress, repair, unfinished_run
from creditlake.entity.resolve import (
    ResolveResult,
    resolve,
    resolve_incremental,
    unresolved_records,
)


@dataclass
class EntityRun:
    result: ResolveResult
    estimation: Estimation
    model: EntityModel
    recovered_from: str | None = None  # the run id of a dead run this one repaired


def run_entities(engine: Engine, home: Path, *, mode: str = "incremental",
                 retrain: bool = False, memory_limit: str | None = None) -> EntityRun:
    """`retrain`: the operator's explicit re-train (train.retrain), then a full re-link."""
    dead = unfinished_run(home)
    if dead is not None:
        repair(engine, dead)
    run_id = uuid.uuid4().hex
    # DuckDB spills into the run's own directory under home (never the CWD), gone after.
    with in_progress(home, run_id), spill_directory(run_spill_dir(home, run_id)):
        model = load_model(home=home)
        new = None
        if retrain:
            from creditlake.entity.train import retrain as explicit_retrain

            model, path = explicit_retrain(engine, home)
            est = Estimation(status="estimated", reason="operator re-train",
                             model_version=model.version, path=str(path))
        else:
            # The records to resolve, read once: the estimation profiles them, the run links
            # them (a repair re-links everything instead).
            new = (unresolved_records(engine) if mode == "incremental" and dead is None
                   else None)
            model, est = maybe_reestimate(engine, home, model, batch=new)
        if est.status == "estimated" or dead is not None:
            mode = "full"  # a new model (or a repair) re-links everything; stable ids keep ids
        if mode == "incremental" and new is not None:
            res = resolve_incremental(engine, model, memory_limit=memory_limit, new=new,
                                      run_id=run_id)
        else:
            res = resolve(engine, model, mode, memory_limit=memory_limit, run_id=run_id)
    return EntityRun(res, est, model, recovered_from=dead)
