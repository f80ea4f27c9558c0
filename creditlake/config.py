"""Runtime configuration, read from CREDITLAKE_* environment variables (see README)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    home: Path
    clickhouse_url: str
    clickhouse_database: str
    database_url: str
    redis_url: str | None
    admin_token: str | None

    @property
    def landing_dir(self) -> Path:
        return Path(os.environ.get("CREDITLAKE_LANDING_DIR", self.home / "landing"))

    @property
    def quarantine_dir(self) -> Path:
        return self.home / "quarantine"

    @property
    def embedded(self) -> bool:
        return self.clickhouse_url.startswith("chdb:")

    @property
    def chdb_path(self) -> Path | None:
        if not self.embedded:
            return None
        return Path(self.clickhouse_url.removeprefix("chdb://"))


def load_settings(env: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ if env is None else env)
    home = Path(env.get("CREDITLAKE_HOME", "./.creditlake")).expanduser().resolve()
    return Settings(
        home=home,
        clickhouse_url=env.get("CREDITLAKE_CLICKHOUSE_URL") or f"chdb://{home / 'clickhouse'}",
        clickhouse_database=env.get("CREDITLAKE_CLICKHOUSE_DATABASE", "creditlake"),
        database_url=env.get("CREDITLAKE_DATABASE_URL") or f"sqlite:///{home / 'ledger.db'}",
        redis_url=env.get("CREDITLAKE_REDIS_URL") or None,
        admin_token=env.get("CREDITLAKE_ADMIN_TOKEN") or None,
    )
