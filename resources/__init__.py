"""Dagster resources (app layer): ClickHouse (embedded chDB or server), the creditlake home,
progress reporting.

May import: the creditlake library. Not assets, checks, api or cli."""

from resources.clickhouse import ClickHouseResource
from resources.home import CreditlakeHome
from resources.progress import LogProgress, ProgressReporter

__all__ = ["ClickHouseResource", "CreditlakeHome", "LogProgress", "ProgressReporter"]
