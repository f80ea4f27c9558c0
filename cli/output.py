"""Shared CLI output helpers: JSON for scripts on stdout, messages for people on stderr."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import typer
from rich.console import Console

err_console = Console(stderr=True)
console = Console()


def print_json(doc: Any) -> None:
    sys.stdout.write(json.dumps(doc, indent=2, default=str) + "\n")


@contextmanager
def supervised(sup) -> Iterator[None]:  # noqa: ANN001 - cli.launcher.Supervisor
    """Run the body with `sup`'s processes; a launch error is a clear message and exit 1, and
    every process is stopped on the way out (Ctrl-C included)."""
    from cli.launcher import LaunchError

    try:
        yield
    except LaunchError as exc:
        err_console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(1) from exc
    finally:
        err_console.print("stopping…")
        sup.stop()
        err_console.print("stopped")


def fail(message: str, code: int = 1) -> NoReturn:
    err_console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)
