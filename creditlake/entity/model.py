"""The linkage model: Splink settings, training, and the versioned JSON that holds them.

A model file (creditlake/entity/models/<name>.json) is one JSON object:
  {"creditlake": {name, threshold, predict_threshold, max_value_frequency, trained_on, ...},
   "splink": <Splink 5 settings dict with trained m/u, as saved by save_model_to_json>}
Its version is "<name>+<sha256 of the canonical JSON, 10 hex>": an entity row carries it, so
a change to any parameter, blocking rule or threshold yields a new version.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import splink.comparison_library as cl
from splink import SettingsCreator, block_on

MODELS_DIR = Path(__file__).parent / "models"
DEFAULT_MODEL = "people-v1"
log = logging.getLogger(__name__)


# Date format strings are dialect-specific (strftime vs Java DateTimeFormatter).
DOB_FORMAT = {"duckdb": "%Y-%m-%d", "spark": "yyyy-MM-dd"}


def comparisons(dialect: str = "duckdb") -> list[Any]:
    """One comparison per feature column; each level's m/u is learned, TF where it matters."""
    return [
        cl.JaroWinklerAtThresholds("first_name", [0.92, 0.8]).configure(
            term_frequency_adjustments=True),
        cl.JaroWinklerAtThresholds("surname", [0.92, 0.8]).configure(
            term_frequency_adjustments=True),
        cl.DateOfBirthComparison("dob", input_is_string=True, datetime_format=DOB_FORMAT[dialect],
                                 invalid_dates_as_null=False),
        cl.EmailComparison("email"),
        cl.LevenshteinAtThresholds("phone", [1, 2]),
        cl.JaroWinklerAtThresholds("address", [0.95, 0.85]),
        cl.JaroWinklerAtThresholds("city", [0.92]).configure(term_frequency_adjustments=True),
        cl.LevenshteinAtThresholds("postcode", [1]),
        cl.LevenshteinAtThresholds("user_id", [1, 2]),
    ]


def blocking_rules() -> list[Any]:
    """Candidate pairs: any one shared key is enough. Placeholders are nulled beforehand.

    Measured on 1M generated records: each rule yields 0.03M-1.3M pairs; first_name+postcode
    (11.9M, mostly non-matches) was dropped for speed, the others cover what it found.
    """
    return [
        block_on("email"),
        block_on("phone"),
        block_on("user_id"),
        block_on("surname", "city"),
        block_on("surname", "postcode"),
        block_on("first_name", "surname"),
        block_on("dob", "surname"),
        block_on("dob", "first_name"),
        block_on("dob", "postcode"),
        block_on("address", "city"),
    ]


def settings_creator(dialect: str = "duckdb") -> SettingsCreator:
    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="unique_id",
        comparisons=comparisons(dialect),
        blocking_rules_to_generate_predictions=blocking_rules(),
        retain_matching_columns=True,
        retain_intermediate_calculation_columns=True,
        max_iterations=20,
    )


@dataclass
class EntityModel:
    """A loaded model: creditlake thresholds + the Splink settings dict."""

    name: str
    splink: dict[str, Any]
    threshold: float = 0.9  # cluster edges at match_probability >= threshold
    predict_threshold: float = 0.5  # pairs kept from predict (examples, suspicious checks)
    max_value_frequency: int = 50  # email/phone/user_id shared by more records = placeholder
    max_cluster_size: int = 50  # the suspicious-cluster check
    extra: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        meta = {
            "name": self.name, "threshold": self.threshold,
            "predict_threshold": self.predict_threshold,
            "max_value_frequency": self.max_value_frequency,
            "max_cluster_size": self.max_cluster_size, **self.extra,
        }
        return {"creditlake": meta, "splink": self.splink}

    @property
    def version(self) -> str:
        blob = json.dumps(self.as_json(), sort_keys=True, separators=(",", ":"))
        return f"{self.name}+{hashlib.sha256(blob.encode()).hexdigest()[:10]}"

    def match_weights(self) -> dict[str, dict[str, float | None]]:
        """Trained match weight (log2 m/u) per comparison level, for Dagster metadata."""
        import math

        out: dict[str, dict[str, float | None]] = {}
        for comp in self.splink.get("comparisons", []):
            levels: dict[str, float | None] = {}
            for lvl in comp.get("comparison_levels", []):
                if lvl.get("is_null_level"):
                    continue
                m, u = lvl.get("m_probability"), lvl.get("u_probability")
                label = lvl.get("label_for_charts") or lvl.get("sql_condition", "")
                levels[label] = round(math.log2(m / u), 3) if m and u else None
            out[comp.get("output_column_name", "?")] = levels
        return out

    def splink_settings(self, dialect: str) -> dict[str, Any]:
        """The Splink settings for a backend's SQL dialect.

        Saved SQL conditions are dialect-specific (DuckDB quotes identifiers with "", Spark
        reads that as a string), so for another dialect the comparisons and blocking rules
        are rebuilt from the code in this module and the trained m/u/prior copied over.
        """
        if self.splink.get("sql_dialect", "duckdb") == dialect:
            return dict(self.splink)
        fresh = settings_creator(dialect).create_settings_dict(dialect)
        trained = self.splink["comparisons"]
        if [c["output_column_name"] for c in fresh["comparisons"]] != [
                c["output_column_name"] for c in trained]:
            raise ValueError(f"model {self.version} does not match the comparisons in code")
        for new, old in zip(fresh["comparisons"], trained, strict=True):
            labels_new = [lvl.get("label_for_charts") for lvl in new["comparison_levels"]]
            labels_old = [lvl.get("label_for_charts") for lvl in old["comparison_levels"]]
            if labels_new != labels_old:
                raise ValueError(f"levels of {new['output_column_name']} changed in code")
            for lvl_new, lvl_old in zip(new["comparison_levels"], old["comparison_levels"],
                                        strict=True):
                for key in ("m_probability", "u_probability", "tf_adjustment_weight"):
                    if key in lvl_old:
                        lvl_new[key] = lvl_old[key]
        if len(fresh["blocking_rules_to_generate_predictions"]) != len(
                self.splink["blocking_rules_to_generate_predictions"]):
            raise ValueError(f"model {self.version} blocking rules differ from the code")
        fresh["probability_two_random_records_match"] = self.splink[
            "probability_two_random_records_match"]
        return fresh

    def save(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")  # a kill mid-write leaves the old file whole
        tmp.write_text(json.dumps(self.as_json(), indent=2, sort_keys=True) + "\n")
        tmp.replace(path)
        return path

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EntityModel:
        meta = dict(data["creditlake"])
        known = {k: meta.pop(k) for k in ("name", "threshold", "predict_threshold",
                                          "max_value_frequency", "max_cluster_size")
                 if k in meta}
        return cls(splink=data["splink"], extra=meta, **known)


_EQ = re.compile(r'^\s*l\."?(\w+)"?\s*=\s*r\."?(\w+)"?\s*$', re.I)


def blocking_columns(model: EntityModel) -> list[tuple[str, ...]]:
    """Column tuples of the model's equality blocking rules (candidate selection, the cap on
    oversized blocks in linking.py)."""
    out = []
    for rule in model.splink.get("blocking_rules_to_generate_predictions", []):
        sql = rule["blocking_rule"] if isinstance(rule, dict) else str(rule)
        cols = []
        for part in re.split(r"\s+AND\s+", sql.strip().strip("()"), flags=re.I):
            m = _EQ.match(part.strip("() "))
            if not m or m.group(1) != m.group(2):
                raise ValueError(f"incremental linking needs equality blocking rules: {sql}")
            cols.append(m.group(1))
        out.append(tuple(cols))
    return out


def load_model(name_or_path: str | Path | None = None, home: Path | None = None) -> EntityModel:
    """A model by path, by name in the repo's models/ dir, or the newest retrained one.

    Retrained models are written to $CREDITLAKE_HOME/entity/models/ (see train.py); the
    newest there wins over the repo's shipped model when no name is given.
    """
    if name_or_path is None:
        if home is not None:
            trained = sorted((home / "entity" / "models").glob("*.json"))
            if trained:
                return load_model(trained[-1])
        name_or_path = DEFAULT_MODEL
    path = Path(name_or_path)
    if not path.suffix:
        path = MODELS_DIR / f"{name_or_path}.json"
    return EntityModel.from_json(json.loads(path.read_text()))
