"""Run the real API under uvicorn in its own process (own chDB path), seeding N rows first.

    python tests/api_server.py PORT N_ROWS      (configuration from CREDITLAKE_* env)
Used by the schemathesis test: one process owns its chDB path, as in production.
"""

from __future__ import annotations

import sys

import uvicorn
from api_support import seed_records

from api.app import create_app
from creditlake.clickhouse import open_engine
from creditlake.clickhouse.ddl import migrate
from creditlake.config import load_settings


def main(port: int, rows: int) -> None:
    settings = load_settings()
    engine = open_engine(settings)
    migrate(engine)
    if rows:
        seed_records(engine, rows)
    uvicorn.run(create_app(settings, engine), host="127.0.0.1", port=port, log_level="warning")
    engine.close()


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
