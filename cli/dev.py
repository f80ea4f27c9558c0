"""`creditlake dev`: the Dagster UI + daemon (+ the API) on an existing home, until Ctrl-C."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.output import console, err_console, fail, supervised
from creditlake.config import load_settings


def dev(
    port: Annotated[int, typer.Option(help="API port.")] = 8000,
    ui_port: Annotated[int, typer.Option(help="Dagster UI port.")] = 3000,
    host: Annotated[str, typer.Option(help="Interface for the API and the UI.")] = "127.0.0.1",
    no_api: Annotated[bool, typer.Option("--no-api", help="Only the Dagster UI and daemon.")
                      ] = False,
) -> None:
    """Dagster UI + daemon (landing sensor) + API on this $CREDITLAKE_HOME, until Ctrl-C.

    The API owns the embedded engine; Dagster runs started by the daemon or the UI are its
    clients (see the README, "One machine, everything at once").
    """
    from cli.demo import _check_ports, _shown_host
    from cli.launcher import Supervisor, api_service, dagster_services

    settings = load_settings()
    if not settings.home.is_dir():
        fail(f"no creditlake home at {settings.home}; run `creditlake demo` (sample data) or "
             "`creditlake ingest PATH…` first, or set CREDITLAKE_HOME", code=2)
    _check_ports(host, ([] if no_api else [port]) + [ui_port])
    settings.landing_dir.mkdir(parents=True, exist_ok=True)
    services = ([] if no_api else [api_service(host, port)]) + dagster_services(host, ui_port)
    sup = Supervisor(settings, services)
    sup.install_signal_handlers()
    shown = _shown_host(host)
    with supervised(sup):
        sup.start()
        with err_console.status(f"starting (logs in {sup.log_dir})…"):
            sup.wait_ready()
        if sup.stop_requested:
            return
        console.print(f"Dagster UI     http://{shown}:{ui_port}")
        if not no_api:
            console.print(f"API            http://{shown}:{port}   (docs: /docs)")
        console.print(f"landing dir    {settings.landing_dir}   (sensor every 10 s)\n"
                      "Ctrl-C stops everything.")
        sup.run_until_stopped()


def register(app: typer.Typer) -> None:
    app.command("dev")(dev)
