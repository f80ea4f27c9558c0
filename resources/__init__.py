"""Dagster resources: ClickHouse (embedded chDB or server), the creditlake home, progress."""

from resources.clickhouse import ClickHouseResource
from resources.home import CreditlakeHome
from resources.progress import LogProgress, ProgressReporter

__all__ = ["ClickHouseResource", "CreditlakeHome", "LogProgress", "ProgressReporter"]
