"""`creditlake` command line. Each module in this package that defines `register(app)` adds
its commands (ingest, admin, serve, demo, dev, ...); helpers like output.py define none."""

from __future__ import annotations

import importlib
import pkgutil

import typer

app = typer.Typer(
    name="creditlake",
    help="creditlake: ingest contact data into ClickHouse and sell queries over it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _load() -> None:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(app)


def main() -> None:
    _load()
    app()
