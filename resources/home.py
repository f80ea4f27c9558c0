
import os
from pathlib import Path

import dagster as dg

from creditlake.ingest.registry import Registry
from creditlake.rules.overrides import SourceOverrides


class CreditlakeHome(dg.ConfigurableResource):
    """$CREDITLAKE_HOME: landing directory, partition registry, staging, mapping overrides."""

    path: str
    landing_dir: str = ""
    mappings_file: str = ""
    max_failure_rate: float = 0.001

    @property
    def home(self) -> Path:
        return Path(self.path)

    @property
    def landing(self) -> Path:
        return Path(self.landing_dir) if self.landing_dir else self.home / "landing"

    def registry(self) -> Registry:
        return Registry(self.home)

    def overrides(self) -> SourceOverrides:
        f = Path(self.mappings_file) if self.mappings_file else self.home / "mappings.yaml"
        return SourceOverrides.from_yaml(f)


def max_failure_rate_from_env() -> float:
    return float(os.environ.get("CREDITLAKE_MAX_FAILURE_RATE", "0.001"))
