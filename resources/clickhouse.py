
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

from creditlake.config import Settings, load_settings
from creditlake.ddl import migrate
from creditlake.engine.base import Engine


class ClickHouseResource(dg.ConfigurableResource):
    """ClickHouse by URL: `chdb:///abs/path` (embedded, shared with the API through the
    engine owner) or `http(s)://user:pass@host:8123` (server). Opened per step, never at
    definition load: the webserver and daemon import definitions.py too."""

    url: str
    database: str = "creditlake"
    home: str

    def settings(self) -> Settings:
        base = load_settings({"CREDITLAKE_HOME": self.home})
        return Settings(home=base.home, clickhouse_url=self.url,
                        clickhouse_database=self.database, database_url=base.database_url,
                        redis_url=None, admin_token=None)

    @contextmanager
    def open(self) -> Iterator[Engine]:
        from creditlake.engine import connect_engine

        engine = connect_engine(self.settings(), role="dagster")
        try:
            migrate(engine)
            yield engine
        finally:
            engine.close()
