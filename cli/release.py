"""`creditlake release KEY`: load the held rows of a blocked file."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.output import console, fail, print_json
from cli.replay import NO_RESOLVE_HELP
from creditlake.config import load_settings


def release(
    key: Annotated[str, typer.Argument(
        help="Partition key (name@hash, see `ingest --json`) or source file name of the "
             "blocked file.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")
                       ] = False,
    no_resolve: Annotated[bool, typer.Option("--no-resolve", help=NO_RESOLVE_HELP)] = False,
) -> None:
    """Load the valid rows a blocked file holds in staging (its failure-rate check failed
    under `on_reject: block` or --block-on-rejects). Its rejects stay in rejected_records;
    ingestion_log moves the rows from held to loaded/duplicates. When rows were loaded, one
    incremental entity resolution run follows (unless --no-resolve); exit code 2 if it failed."""
    from cli.entity_run import resolve_after_load
    from cli.replay import exit_after_entity_run, resolve_key
    from creditlake.clickhouse.sharing import engine_session
    from creditlake.ingest.accounting import log_message
    from creditlake.ingest.release import NotBlocked
    from creditlake.ingest.release import release as run_release

    settings = load_settings()
    with engine_session(settings, role="cli") as engine:
        partition = resolve_key(engine, key)
        try:
            m = run_release(engine, settings.home, partition)
        except (NotBlocked, FileNotFoundError) as exc:
            fail(str(exc))
    from assets.deadletter import release_event
    from cli.runner import report_to_dagster

    report_to_dagster(settings, [release_event(m)])
    doc = {"partition_key": m.key, "source_file": m.source_file, "status": str(m.status),
           "rows_read": m.rows_read, "loaded": m.loaded, "duplicates": m.duplicates,
           "rejected": m.rejected, "held": m.held, "message": log_message(m)}
    entity = None if no_resolve else resolve_after_load(settings, loaded=m.loaded, quiet=as_json)
    if as_json:
        print_json({**doc, "entity": entity})
    else:
        console.print(f"released {m.source_file}: {m.loaded:,} loaded, {m.duplicates:,} "
                      f"duplicates, {m.rejected:,} rejected, {m.held:,} held")
    exit_after_entity_run(entity)


def register(app: typer.Typer) -> None:
    app.command("release")(release)
