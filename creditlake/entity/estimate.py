"""Unsupervised re-estimation of the linkage model, decided and checked automatically.

Before a run, `estimation_reason` says whether the model in use still fits the data:
  - profile: the records to resolve fill the features differently from the records the model
    was estimated on (a share of non-empty values differing by PROFILE_SHIFT or more, e.g. a
    source with no e-mail or phone such as FEBRL), or
  - growth: the model was estimated on this database and the records have grown GROWTH-fold
    since (and by at least MIN_SAMPLE). The shipped model is generic, so growth alone does not
    replace it.
`estimate` then fits a new version without labels (prior from deterministic rules, u from
random sampling, m by EM on several blocking passes, each bounded by EM_MAX_PAIRS) and
`sanity_problems` applies the guard rails (every comparison present, exact-match levels of
filled features estimated, plausible prior and m/u); a model that fails them is not used, the
run metadata says why, and the same model is not re-fitted on that data again until the
records have grown GROWTH-fold ($CREDITLAKE_HOME/entity/rejected_fits.json). Accepted models
are saved under $CREDITLAKE_HOME/entity/models/ (versioned by name and content hash) and
`load_model(home=...)` picks the newest.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from creditlake.clickhouse.base import Engine
from creditlake.entity import duck, linking
from creditlake.entity.model import EntityModel
from creditlake.entity.prepare import FEATURE_COLUMNS, prepare

PROFILED = tuple(c for c in FEATURE_COLUMNS if c != "unique_id")
PROFILE_SHIFT = 0.4  # a feature present in most records of one and few of the other
GROWTH = 2.0
MIN_SAMPLE = 500  # fewer records than this give EM too few matches to learn from
ESTIMATE_SAMPLE = 100_000  # records read for estimation: EM and u converge long before
U_MAX_PAIRS = 1e6  # random pairs for u
EM_MAX_PAIRS = 1e6  # blocked pairs per EM pass
PROFILE_SAMPLE = 5_000  # records to resolve, profiled before every run: keep it cheap
PRIOR_RANGE = (1e-9, 0.05)
MIN_PRESENT = 0.05  # a feature in fewer records than this carries no evidence to check
MISMATCH_COUNTS = ("first_name", "surname")


@dataclass
class Estimation:
    """What the run decided about the model; goes into the run metadata."""

    status: str = "kept"  # kept | estimated | rejected
    reason: str = ""
    model_version: str = ""
    previous_version: str = ""
    problems: list[str] = field(default_factory=list)
    profile: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    path: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v not in ("", [], {})}


def feature_profile(features: pa.Table) -> dict[str, float]:
    """Share of records with a non-empty value, per feature (vectorized in DuckDB)."""
    if features.num_rows == 0:
        return {}
    con = duck.connect()
    con.register("__f", features)
    cols = ", ".join(f"avg(({c} IS NOT NULL)::INT) AS {c}" for c in PROFILED)
    row = con.sql(f"SELECT {cols} FROM __f").fetchall()[0]
    con.close()
    return {c: round(float(v or 0.0), 4) for c, v in zip(PROFILED, row, strict=True)}


def estimation_reason(model: EntityModel, batch_profile: dict[str, float], records_total: int,
                      database: str) -> str:
    """Why the model should be re-estimated now ('' = it still fits)."""
    trained = model.extra.get("trained_on", {})
    known = trained.get("profile") or {}
    if records_total < MIN_SAMPLE:
        return ""
    shifted = [f"{c} {known[c]:.2f}->{batch_profile[c]:.2f}" for c in PROFILED
               if c in known and c in batch_profile
               and abs(known[c] - batch_profile[c]) >= PROFILE_SHIFT]
    if shifted:
        return "profile: " + ", ".join(shifted)
    base = int(trained.get("records", 0))
    if (trained.get("database") == database and records_total >= GROWTH * base
            and records_total - base >= MIN_SAMPLE):
        return f"growth: {base} -> {records_total} records"
    return ""


def sanity_problems(model: EntityModel, profile: dict[str, float]) -> list[str]:
    """Guard rails on a fitted model: empty list = usable."""
    from creditlake.entity.model import settings_creator

    problems = []
    expected = [c["output_column_name"] for c in
                settings_creator().create_settings_dict("duckdb")["comparisons"]]
    have = [c["output_column_name"] for c in model.splink.get("comparisons", [])]
    if have != expected:
        problems.append(f"comparisons {have} instead of {expected}")
    prior = model.splink.get("probability_two_random_records_match")
    if prior is None or not PRIOR_RANGE[0] <= prior <= PRIOR_RANGE[1]:
        problems.append(f"prior {prior} outside {PRIOR_RANGE}")
    for comp in model.splink.get("comparisons", []):
        name = comp["output_column_name"]
        levels = [lvl for lvl in comp["comparison_levels"] if not lvl.get("is_null_level")]
        for lvl in levels:
            for key in ("m_probability", "u_probability"):
                v = lvl.get(key)
                if v is not None and not (0 < v <= 1 and math.isfinite(v)):
                    problems.append(f"{name}: {key} {v} not in (0, 1]")
        if profile.get(name, 0.0) < MIN_PRESENT or not levels:
            continue
        exact, other = levels[0], levels[-1]
        if exact.get("m_probability") is None or exact.get("u_probability") is None:
            problems.append(f"{name}: exact match not estimated although the data has {name}")
        if _weight(exact) is not None and _weight(exact) <= 0:
            problems.append(f"{name}: exact match does not count for a match")
        # Another system's ids or an old e-mail may well differ for one person; two different
        # names may not.
        if name in MISMATCH_COUNTS and _weight(other) is not None and _weight(other) >= 0:
            problems.append(f"{name}: a full mismatch does not count against a match")
    return problems


def _weight(level: dict[str, Any]) -> float | None:
    m, u = level.get("m_probability"), level.get("u_probability")
    return math.log2(m / u) if m and u else None


def estimate(features: pa.Table, base: EntityModel, name: str, database: str,
             reason: str, records_total: int) -> tuple[EntityModel, Estimation]:
    """Fit a new version on `features`; Estimation.status is estimated or rejected."""
    started = datetime.now(UTC)
    profile = feature_profile(features)
    est = Estimation(reason=reason, previous_version=base.version, profile=profile)
    params = {"threshold": base.threshold, "predict_threshold": base.predict_threshold,
              "max_value_frequency": base.max_value_frequency,
              "max_cluster_size": base.max_cluster_size}
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    model = base
    if features.num_rows < MIN_SAMPLE:
        est.problems = [f"{features.num_rows} records, fewer than the minimum {MIN_SAMPLE}"]
    else:
        try:
            model = linking.train(features, f"{name}-{stamp}", max_pairs=U_MAX_PAIRS,
                                  em_max_pairs=EM_MAX_PAIRS, **params)
            model.extra["trained_on"] = {"records": records_total, "sample": features.num_rows,
                                         "at": stamp, "database": database,
                                         "profile": profile, "reason": reason}
            est.problems = sanity_problems(model, profile)
        except Exception as exc:  # noqa: BLE001 - any failed fit keeps the previous model
            est.problems = [f"estimation failed: {type(exc).__name__}: {exc}"[:300]]
    est.status = "rejected" if est.problems else "estimated"
    if est.problems:
        model = base
    est.model_version = model.version
    est.seconds = round((datetime.now(UTC) - started).total_seconds(), 2)
    return model, est


def save(model: EntityModel, home: Path) -> Path:
    return model.save(home / "entity" / "models" / f"{model.name}.json")


def maybe_reestimate(engine: Engine, home: Path, model: EntityModel, name: str = "people",
                     batch: pa.Table | None = None) -> tuple[EntityModel, Estimation]:
    """Re-estimate when `estimation_reason` says so; the model to resolve with and why.

    `batch`: the records to resolve, when the caller has read them (else read here).
    An accepted model is saved (versioned) under home; the caller then re-links everything
    with it (stable ids keep every entity's id). A rejected one changes nothing.
    """
    from creditlake.entity.ddl import migrate_entities
    from creditlake.entity.resolve import frequent_values, read_records

    migrate_entities(engine)
    db = engine.database
    total = int(engine.query_rows(f"SELECT count() FROM {db}.records")[0][0])
    resolved = engine.query_rows(f"SELECT count() FROM {db}.entities")[0][0]
    where = ("" if not resolved else
             f"toString(id) NOT IN (SELECT record_id FROM {db}.entities) AND ")
    batch = (read_records(engine, f"{where}1 = 1 LIMIT {PROFILE_SAMPLE}") if batch is None
             else batch.slice(0, PROFILE_SAMPLE))
    if batch.num_rows == 0:
        return model, Estimation(model_version=model.version)
    # Placeholders are a sliver of any batch: the coarse profile does not need them nulled.
    profile = feature_profile(prepare(batch.drop_columns(["status", "data_quality_score"])))
    reason = estimation_reason(model, profile, total, db)
    rejected_at = _rejections(home).get(model.version, 0)
    if reason and rejected_at and total < GROWTH * rejected_at:
        # The same model failed to re-fit on this data already: retry once it has grown.
        return model, Estimation(model_version=model.version, profile=profile,
                                 reason=f"{reason} (a fit was rejected at {rejected_at} "
                                        f"records; retried at {int(GROWTH * rejected_at)})")
    if not reason:
        return model, Estimation(model_version=model.version, profile=profile)
    frequent = frequent_values(engine, model.max_value_frequency)
    sample = read_records(engine, f"1 = 1 ORDER BY cityHash64(id) LIMIT {ESTIMATE_SAMPLE}")
    feats = prepare(sample.drop_columns(["status", "data_quality_score"]), frequent)
    new, est = estimate(feats, model, name, db, reason, total)
    if est.status == "estimated":
        est.path = str(save(new, home))
    else:
        _remember_rejection(home, model.version, total)
    return new, est


def _rejections_path(home: Path) -> Path:
    return home / "entity" / "rejected_fits.json"


def _rejections(home: Path) -> dict[str, int]:
    path = _rejections_path(home)
    return json.loads(path.read_text()) if path.exists() else {}


def _remember_rejection(home: Path, version: str, records: int) -> None:
    path = _rejections_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")  # a kill mid-write leaves the old file whole
    tmp.write_text(json.dumps({**_rejections(home), version: records}, sort_keys=True))
    tmp.replace(path)
