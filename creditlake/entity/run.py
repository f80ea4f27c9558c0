"""One entity run as the platform does it (the Dagster asset, the CLI, the benchmarks):
re-estimate the model when the data asks for it (creditlake/entity/estimate.py), then resolve
incrementally, or everything again when the model changed."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from creditlake.clickhouse.base import Engine
from creditlake.entity.estimate import Estimation, maybe_reestimate
from creditlake.entity.model import EntityModel, load_model
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


def run_entities(engine: Engine, home: Path, *, mode: str = "incremental",
                 retrain: bool = False, memory_limit: str | None = None) -> EntityRun:
    """`retrain`: the operator's explicit re-train (train.retrain), then a full re-link."""
    model = load_model(home=home)
    new = None
    if retrain:
        from creditlake.entity.train import retrain as explicit_retrain

        model, path = explicit_retrain(engine, home)
        est = Estimation(status="estimated", reason="operator re-train",
                         model_version=model.version, path=str(path))
    else:
        # Read the records to resolve once: the estimation profiles them, the run links them.
        new = unresolved_records(engine) if mode == "incremental" else None
        model, est = maybe_reestimate(engine, home, model, batch=new)
    if est.status == "estimated":
        mode = "full"  # a new model re-links everything; stable ids keep the entity ids
    if mode == "incremental" and new is not None:
        res = resolve_incremental(engine, model, memory_limit=memory_limit, new=new)
    else:
        res = resolve(engine, model, mode, memory_limit=memory_limit)
    return EntityRun(res, est, model)
