"""`creditlake replay`: re-process dead-letter rows through the current overrides and rules."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table

from cli.output import console, err_console, fail, print_json
from creditlake.config import load_settings

NO_RESOLVE_HELP = "Skip the incremental entity resolution run after rows were loaded."


def resolve_key(engine, name: str) -> str:  # noqa: ANN001 - creditlake.clickhouse.Engine
    """A partition key as given, or the newest partition of a source file name."""
    rows = engine.query_rows(
        f"SELECT partition_key FROM {engine.database}.ingestion_log FINAL "
        "WHERE partition_key = {n:String} OR source_file = {n:String} "
        "ORDER BY partition_key = {n:String} DESC, finished_at DESC LIMIT 1", {"n": name})
    if not rows:
        fail(f"no ingested file or partition key {name!r} (see ingestion_log)")
    return rows[0][0]


def replay(
    file: Annotated[str | None, typer.Argument(
        help="Partition key (name@hash) or source file name whose rejected rows to replay.")
                    ] = None,
    all_files: Annotated[bool, typer.Option("--all", help="Every file with rejected rows.")
                         ] = False,
    since: Annotated[datetime | None, typer.Option(
        help="Only rows rejected at/after this date or time (UTC), e.g. 2026-12-01.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")
                       ] = False,
    no_resolve: Annotated[bool, typer.Option("--no-resolve", help=NO_RESOLVE_HELP)] = False,
) -> None:
    """Re-process the rejected rows (rejected_records, validation stage) of a file, of all
    files, or of those rejected since a date, through the current mapping overrides
    ($CREDITLAKE_HOME/mappings.yaml) and rules. Rows that now pass are deduplicated and
    loaded; rows that still fail stay rejected with their new reasons. The counts in
    ingestion_log move from rejected to loaded/duplicates once: running it again changes
    nothing. When rows were loaded, one incremental entity resolution run follows (unless
    --no-resolve); exit code 2 if it failed."""
    from cli.entity_run import resolve_after_load
    from creditlake.clickhouse.sharing import engine_session
    from creditlake.ingest.overrides import SourceOverrides
    from creditlake.ingest.replay import replay as run_replay

    if file is None and not all_files and since is None:
        fail("name a FILE, or use --all or --since")
    if file is not None and all_files:
        fail("give a FILE or --all, not both")
    settings = load_settings()
    since_utc = since.replace(tzinfo=UTC) if since and since.tzinfo is None else since
    overrides = SourceOverrides.from_yaml(settings.home / "mappings.yaml")
    with engine_session(settings, role="cli") as engine:
        keys = [resolve_key(engine, file)] if file else None
        done = run_replay(engine, settings.home, keys, since=since_utc, overrides=overrides)
    if done:
        from assets.deadletter import replay_events
        from cli.runner import report_to_dagster

        report_to_dagster(settings, replay_events(done))
    results = [r.as_dict() for r in done]
    totals = {k: sum(int(r[k]) for r in results)
              for k in ("replayed", "loaded", "duplicates", "still_rejected")}
    entity = None if no_resolve else resolve_after_load(settings, loaded=totals["loaded"],
                                                        quiet=as_json)
    if as_json:
        print_json({"files": results, "totals": totals, "entity": entity})
    else:
        print_table(results, totals)
    exit_after_entity_run(entity)


def exit_after_entity_run(entity: dict | None) -> None:
    """Report the entity run that followed a load (stderr); exit 2 if it failed."""
    from cli.ingest import EXIT_FILES, entity_line

    if entity is None:
        return
    err_console.print(entity_line(entity))
    if not entity["success"]:
        raise typer.Exit(EXIT_FILES)


def print_table(results: list[dict], totals: dict[str, int]) -> None:
    table = Table(title=f"replayed rejected rows of {len(results)} file(s)")
    cols = ("source_file", "replayed", "loaded", "duplicates", "still_rejected", "skipped")
    for c in cols:
        table.add_column(c, justify="right" if c in totals else "left")
    for r in results:
        table.add_row(*(f"{r[c]:,}" if isinstance(r[c], int) else str(r[c]) for c in cols))
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command("replay")(replay)
