"""Explicit re-training: estimate a new model version from the data (never implicit).

`retrain(engine, home)` trains on the records in ClickHouse and writes
$CREDITLAKE_HOME/entity/models/<name>-<UTC timestamp>.json, which `load_model(home=...)`
then prefers over the repository's shipped model. The shipped model
(creditlake/entity/models/people-v1.json) is reproduced with:

    uv run python -m creditlake.entity.train --synthetic 60000
"""

from __future__ import annotations

import argparse
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from creditlake.clickhouse.base import Engine
from creditlake.entity import linking
from creditlake.entity.model import DEFAULT_MODEL, MODELS_DIR, EntityModel, load_model
from creditlake.entity.prepare import prepare

log = logging.getLogger(__name__)
# How many records training reads at most: EM and u-sampling converge long before 1M.
TRAIN_SAMPLE = 300_000


def train_on_records(records: pa.Table, name: str, base: EntityModel | None = None,
                     **kwargs: Any) -> EntityModel:
    """Train on master-schema rows; thresholds come from `base` (the shipped model)."""
    base = base or load_model(DEFAULT_MODEL)
    feats = prepare(records)
    params = {"threshold": base.threshold, "predict_threshold": base.predict_threshold,
              "max_value_frequency": base.max_value_frequency,
              "max_cluster_size": base.max_cluster_size}
    params.update(kwargs)
    model = linking.train(feats, name, **params)
    model.extra["trained_on"] = {"records": records.num_rows,
                                 "at": datetime.now(UTC).isoformat(timespec="seconds")}
    return model


def retrain(engine: Engine, home: Path, name: str = "people", **kwargs: Any) -> tuple[
        EntityModel, Path]:
    """Train on (a sample of) `records` and save a new model version under home."""
    from creditlake.entity.resolve import frequent_values, read_records

    base = load_model(home=home)
    where = f"1 = 1 ORDER BY cityHash64(id) LIMIT {TRAIN_SAMPLE}"
    records = read_records(engine, where)
    freq = frequent_values(engine, base.max_value_frequency)
    feats = prepare(records.drop_columns(["status", "data_quality_score"]), freq)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    params = {"threshold": base.threshold, "predict_threshold": base.predict_threshold,
              "max_value_frequency": base.max_value_frequency,
              "max_cluster_size": base.max_cluster_size, **kwargs}
    model = linking.train(feats, f"{name}-{stamp}", **params)
    model.extra["trained_on"] = {"records": records.num_rows, "at": stamp,
                                 "database": engine.database}
    path = model.save(home / "entity" / "models" / f"{model.name}.json")
    return model, path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--synthetic", type=int, default=60_000, help="generated records")
    ap.add_argument("--name", default=DEFAULT_MODEL)
    ap.add_argument("--threshold", type=float, default=0.99)
    ap.add_argument("--out", type=Path, default=MODELS_DIR / f"{DEFAULT_MODEL}.json")
    args = ap.parse_args()
    from creditlake.entity.synthetic import generate_people

    people = generate_people(args.synthetic, seed=11)
    feats = prepare(people.select(["id", "email", "name", "phone", "address", "city",
                                   "country", "created_date", "user_id", "source_file",
                                   "ingested_at", "metadata"]))
    model = linking.train(feats, args.name, threshold=args.threshold)
    model.extra["trained_on"] = {"records": people.num_rows, "data": "synthetic people, seed 11"}
    print(model.save(args.out), model.version)


if __name__ == "__main__":
    main()
