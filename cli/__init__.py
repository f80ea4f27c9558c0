"""`creditlake` command line (app layer). Each module in this package that defines
`register(app)` adds its commands (ingest, admin, serve, demo, dev, ...); launcher.py supervises
child processes and runner.py runs the Dagster ingest job in-process.

May import: the creditlake library, and - lazily, inside commands - definitions, assets,
resources and api (so `--help` stays fast)."""

from __future__ import annotations

import importlib
import pkgutil

import typer

from cli.startup import before_exit, long_lived
from creditlake.lazy import arrow_without_pandas

app = typer.Typer(
    name="creditlake",
    help="creditlake: ingest contact data into ClickHouse and sell queries over it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",  # help paragraphs reflow to the terminal's width
)


def _load() -> None:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(app)


def main() -> None:
    with long_lived():
        arrow_without_pandas()
        _load()
    try:
        app()
    finally:
        before_exit()
