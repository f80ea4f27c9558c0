"""`creditlake serve`: the REST API under uvicorn."""

from __future__ import annotations

from typing import Annotated

import typer


def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(
        help="Worker processes (only with a ClickHouse server URL; the embedded engine "
             "allows one process).")] = 1,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Serve the credit-metered REST API (docs at /docs, health at /healthz)."""
    import uvicorn

    from cli.launcher import port_problem
    from cli.output import fail
    from creditlake.config import load_settings
    from creditlake.preflight import dependency_problems

    settings = load_settings()
    # before anything starts (engine, ledger): a taken port is one clear line, not a traceback
    if problem := port_problem(host, port):
        typer.echo(f"error: {problem}; stop what is using it or choose another with --port",
                   err=True)
        raise typer.Exit(2)
    if problems := dependency_problems(settings):  # say which one is down, not "startup failed"
        fail("; ".join(problems))
    if workers > 1 and settings.embedded:
        typer.echo("error: --workers > 1 needs CREDITLAKE_CLICKHOUSE_URL=http(s)://…; chDB "
                   "allows one process per data directory", err=True)
        raise typer.Exit(2)
    if workers > 1:
        uvicorn.run("api.app:app_from_env", factory=True, host=host, port=port,
                    workers=workers, log_level=log_level)
        return
    from api.app import create_app

    engine = None
    if settings.embedded:
        # Own the embedded engine from start-up (or stand by as a client of the current owner)
        # so Dagster runs and CLI commands on this home become our clients (clickhouse/sharing.py).
        from creditlake.clickhouse.sharing import connect

        engine = connect(settings, role="api", mode="serve")
    try:
        uvicorn.run(create_app(settings, engine), host=host, port=port, log_level=log_level)
    finally:
        if engine is not None:
            engine.close()  # hands the engine over to a waiting client


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
