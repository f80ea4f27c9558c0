"""Run the `creditlake` CLI in-process against a test's Settings (its home, chDB database and
a Dagster instance in the home), as a user's shell would with those environment variables."""

from __future__ import annotations

from typer.testing import CliRunner, Result

from creditlake.config import Settings


def invoke_cli(settings: Settings, *args: str) -> Result:
    from cli import _load, app

    _load()
    (settings.home / "dagster").mkdir(exist_ok=True)
    (settings.home / "dagster" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {"CREDITLAKE_HOME": str(settings.home), "DAGSTER_HOME": str(settings.home / "dagster"),
           "CREDITLAKE_CLICKHOUSE_URL": settings.clickhouse_url,
           "CREDITLAKE_CLICKHOUSE_DATABASE": settings.clickhouse_database}
    return CliRunner().invoke(app, list(args), env=env)
