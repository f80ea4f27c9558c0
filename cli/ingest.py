"""`creditlake ingest PATH...`: run the ingest assets now for files and directories."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cli.output import console, err_console, fail, print_json
from creditlake.config import load_settings
from creditlake.redact import redact

SHOWN_FINISHED = 8  # finished stage lines kept on screen (every line is redrawn per refresh)


class RichProgress:
    """ProgressReporter drawing one line per stage with rows and rows/s (on stderr); only the
    last SHOWN_FINISHED finished lines stay (1,000 files x 2 stages of lines, each redrawn ten
    times a second, cost more CPU than the ingest itself)."""

    def __init__(self, progress: Progress) -> None:
        self.p = progress
        self.task = None
        self._finished: list = []

    def start(self, key: str, stage: str, total_bytes: int | None) -> None:
        name = key.rsplit("@", 1)[0]
        self.task = self.p.add_task(f"{stage:9} {name[:40]}", total=None)
        self._rows = 0

    def advance(self, rows: int) -> None:
        self._rows += rows
        if self.task is not None:
            self.p.update(self.task, advance=rows)

    def finish(self) -> None:
        if self.task is not None:
            self.p.update(self.task, total=self._rows, completed=self._rows)
            self._finished.append(self.task)
            self.task = None
        while len(self._finished) > SHOWN_FINISHED:
            self.p.remove_task(self._finished.pop(0))


def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files or directories (walked recursively).",
                                                exists=True)],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")
                       ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show Dagster's run log.")
                       ] = False,
    max_failure_rate: Annotated[float | None, typer.Option(
        help="Fail the failure-rate check of a file whose rejected share exceeds this "
             "(default 0.001 = 0.1%, or CREDITLAKE_MAX_FAILURE_RATE) and that has at least "
             "CREDITLAKE_MIN_REJECTS (10) rejects. Valid rows still load unless blocking.")
                                ] = None,
    block_on_rejects: Annotated[bool, typer.Option(
        "--block-on-rejects", help="Hold (do not load) the valid rows of every file whose "
                                   "failure-rate check fails, as `on_reject: block` in "
                                   "mappings.yaml does per source; `creditlake release KEY` "
                                   "loads them later.")] = False,
    no_resolve: Annotated[bool, typer.Option(
        "--no-resolve", help="Skip the incremental entity resolution run after the files.")
                          ] = False,
) -> None:
    """Ingest files now with the same Dagster assets the landing sensor runs.

    Each file is detected by content, read, mapped to the master schema, validated, deduplicated
    and loaded into ClickHouse; the per-file summary reports rows read, loaded, duplicates and
    rejected, held (rows_read = loaded + duplicates + rejected + held). Then one incremental
    entity resolution run links the new records to known people (unless --no-resolve).

    Exit codes: 0 every file loaded and no ERROR check failed; 2 a file was blocked,
    quarantined or failed (or entity resolution failed); 3 an ERROR check failed without
    blocking (e.g. too many rejects, rows loaded anyway); 1 usage error. The summary (or the
    --json document) is printed in every case.
    """
    from cli.runner import ingest_with_dagster

    settings = load_settings()
    columns = [TextColumn("{task.description}"), BarColumn(),
               TextColumn("{task.completed:,.0f} rows"), TimeElapsedColumn()]
    # --json into a file or pipe: no progress at all (a transient one still ends in a newline)
    with Progress(*columns, console=err_console, transient=as_json,
                  disable=as_json and not err_console.is_terminal) as bar:
        reporter = RichProgress(bar)
        try:
            results = ingest_with_dagster(settings, paths, progress=reporter,
                                          max_failure_rate=max_failure_rate,
                                          block_on_rejects=block_on_rejects or None,
                                          log_level="INFO" if verbose else "CRITICAL")
        except FileNotFoundError as exc:
            fail(str(exc))
    if not results:
        fail("no files found in the given paths")
    rows = [r.as_dict() for r in results]
    totals = {k: sum(int(r[k]) for r in rows)  # type: ignore[call-overload]
              for k in COUNTS}
    totals["files"] = len(rows)
    entity = None
    if not no_resolve:
        from cli.entity_run import resolve_with_dagster

        with (contextlib.nullcontext() if as_json
              else err_console.status("resolving entities…")):
            entity = resolve_with_dagster(settings, log_level="INFO" if verbose else "CRITICAL")
    if as_json:
        print_json({"files": rows, "totals": totals, "entity": entity})
    else:
        table = Table(title=f"ingested {len(rows)} file(s) into {redact(settings.clickhouse_url)}")
        shown = ("source_file", "format", *COUNTS, "status", "failed_checks")
        for col in shown:
            table.add_column(col, justify="right" if col in totals else "left")
        for r in rows:
            table.add_row(*(f"{r[c]:,}" if isinstance(r[c], int) else
                            ", ".join(r[c]) if isinstance(r[c], list) else str(r[c])
                            for c in shown))
        table.add_row("total", "", *(f"{totals[k]:,}" for k in COUNTS), "", "")
        console.print(table)
        for r in rows:
            if r["message"]:
                err_console.print(f"[yellow]{r['source_file']}[/]: {r['message']}")
        if entity is not None:
            err_console.print(entity_line(entity))
    code = exit_code(rows, entity)
    if code:
        raise typer.Exit(code)


COUNTS = ("rows_read", "loaded", "duplicates", "rejected", "held")
EXIT_OK, EXIT_USAGE, EXIT_FILES, EXIT_CHECKS = 0, 1, 2, 3


def exit_code(rows: list[dict], entity: dict | None) -> int:
    """EXIT_FILES when a file did not load (blocked, quarantined, failed) or entity resolution
    failed; else EXIT_CHECKS when an ERROR check failed; else EXIT_OK."""
    if any(r["status"] != "loaded" for r in rows) or (entity is not None
                                                      and not entity["success"]):
        return EXIT_FILES
    if any(r["failed_checks"] for r in rows):
        return EXIT_CHECKS
    return EXIT_OK


def entity_line(entity: dict) -> str:
    """One line about the entity run for people (the --json document has all of it)."""
    if not entity["success"]:
        return f"[red]entity resolution failed[/]: {entity.get('error')} (run {entity['run_id']})"
    line = (f"entity resolution ({entity.get('mode')}): {entity.get('records_in', 0):,} records "
            f"in, {entity.get('entities_changed', 0):,} entities updated, "
            f"{entity.get('entities_total', 0):,} entities in total")
    est = entity.get("model_estimation") or {}
    if est.get("status") in ("estimated", "rejected"):
        line += f"; model {est['status']} ({est.get('reason', '')})"
    blocks = entity.get("skipped_blocks") or []
    if blocks:  # keys too common to pair on: those records were paired by the other rules only
        line += "; blocking keys skipped (too common): " + ", ".join(
            f"{b['rule']} {b['keys']:,} keys / {b['records']:,} records" for b in blocks)
    return line



def register(app: typer.Typer) -> None:
    app.command("ingest")(ingest)
