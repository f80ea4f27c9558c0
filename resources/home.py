
import json
from pathlib import Path

import dagster as dg

from creditlake.config import (
    DEFAULT_MAX_FAILURE_RATE,
    DEFAULT_MIN_REJECTS,
    Processing,
    Settings,
    spark_conf_from_json,
)
from creditlake.ingest.overrides import SourceOverrides
from creditlake.ingest.policy import RejectPolicy
from creditlake.ingest.registry import Registry


class CreditlakeHome(dg.ConfigurableResource):
    """$CREDITLAKE_HOME: landing directory, partition registry, staging, mapping overrides."""

    path: str
    landing_dir: str = ""
    mappings_file: str = ""
    max_failure_rate: float = DEFAULT_MAX_FAILURE_RATE
    min_rejects: int = DEFAULT_MIN_REJECTS
    block_on_rejects: bool = False
    processing_backend: str = "polars"
    spark_master: str = ""
    spark_conf: str = "{}"  # JSON object

    @classmethod
    def from_settings(cls, settings: Settings, max_failure_rate: float | None = None,
                      block_on_rejects: bool | None = None) -> "CreditlakeHome":
        p = settings.processing
        return cls(path=str(settings.home), landing_dir=str(settings.landing_dir),
                   max_failure_rate=settings.max_failure_rate if max_failure_rate is None
                   else max_failure_rate, min_rejects=settings.min_rejects,
                   block_on_rejects=settings.block_on_rejects if block_on_rejects is None
                   else block_on_rejects,
                   processing_backend=p.backend, spark_master=p.spark_master or "",
                   spark_conf=json.dumps(dict(p.spark_conf)))

    @property
    def home(self) -> Path:
        return Path(self.path)

    @property
    def landing(self) -> Path:
        return Path(self.landing_dir) if self.landing_dir else self.home / "landing"

    def processing(self) -> Processing:
        return Processing(self.processing_backend, self.spark_master or None,
                          spark_conf_from_json(self.spark_conf))

    def reject_policy(self) -> RejectPolicy:
        return RejectPolicy(self.max_failure_rate, self.min_rejects, self.block_on_rejects)

    def registry(self) -> Registry:
        return Registry(self.home)

    def overrides(self) -> SourceOverrides:
        f = Path(self.mappings_file) if self.mappings_file else self.home / "mappings.yaml"
        return SourceOverrides.from_yaml(f)
