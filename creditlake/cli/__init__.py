"""`creditlake` command line. Each command group lives in its own module and registers here."""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="creditlake",
    help="creditlake: ingest contact data into ClickHouse and sell queries over it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Modules that define `register(app)`; missing ones are skipped so a partial checkout still runs.
_COMMAND_MODULES = ("ingest", "admin", "serve", "demo", "dev", "ops")


def _load() -> None:
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(f"creditlake.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"creditlake.cli.{name}":
                continue
            raise
        module.register(app)


def main() -> None:
    _load()
    app()
