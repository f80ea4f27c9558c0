"""`creditlake demo`: sample data in every format -> ingest -> demo key -> API + Dagster UI.

Everything lives under $CREDITLAKE_HOME and is reused on the next run: the sample files
(landing/demo/), the files already ingested (demo_state.json), the demo user and its key
(demo_key, 0600 — a key is shown only when created, so the demo keeps its own copy).
"""

from __future__ import annotations

import json
import os
import shutil
import time
import warnings
from pathlib import Path
from typing import Annotated

import typer

from cli.output import err_console, fail, supervised
from creditlake.config import Settings, load_settings

DEMO_EMAIL = "demo@creditlake.local"
DEMO_CREDITS = 100_000
TOP_UP_BELOW = 1_000
SAMPLE_SUBDIR = "demo"
STATE_FILE = "demo_state.json"
KEY_FILE = "demo_key"


def sample_dir(settings: Settings) -> Path:
    return settings.landing_dir / SAMPLE_SUBDIR


def ensure_sample(settings: Settings, rows: int) -> list[Path]:
    """The demo files: reused when a complete sample exists, else written (atomically, so
    the landing sensor never sees half a sample)."""
    from creditlake.demo_data import write_demo_files

    target = sample_dir(settings)
    marker = target / ".complete.json"
    if marker.exists():
        meta = json.loads(marker.read_text())
        err_console.print(f"reusing the sample in {target} ({meta['rows']:,} rows; delete the "
                          f"directory to write a new one)")
        return [target / name for name in meta["files"]]
    staging = settings.home / "sample.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    started = time.monotonic()
    with err_console.status(f"writing a {rows:,}-row sample in every format…"):
        files = write_demo_files(staging, rows)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    (target / ".complete.json").write_text(json.dumps(
        {"rows": rows, "files": [f.name for f in files]}))
    err_console.print(f"wrote {len(files)} sample files to {target} "
                      f"({time.monotonic() - started:.1f} s)")
    return [target / f.name for f in files]


def ingest_sample(settings: Settings, files: list[Path]) -> None:
    """Ingest the files not ingested by an earlier run, with progress bars."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from cli.ingest import RichProgress
    from cli.runner import cli_instance, ingest_with_dagster
    from creditlake.ingest.registry import Registry

    # deliberate preview feature (see pyproject's pytest filter); not news for a demo user
    warnings.filterwarnings("ignore", message="Specifying a partitions_def on an AssetCheckSpec")
    state_path = settings.home / STATE_FILE
    state = json.loads(state_path.read_text()) if state_path.exists() else {"ingested": []}
    done = set(state["ingested"])
    registry = Registry(settings.home)
    todo = [f for f in files if registry.register(f, settings.landing_dir).key not in done]
    if not todo:
        err_console.print(f"all {len(files)} sample files already ingested")
        return
    columns = [TextColumn("{task.description}"), BarColumn(),
               TextColumn("{task.completed:,.0f} rows"), TimeElapsedColumn()]
    totals = dict.fromkeys(("rows_read", "loaded", "duplicates", "rejected"), 0)
    instance = cli_instance(settings)
    failed, results = [], []
    with Progress(*columns, console=err_console) as bar:
        for f in todo:  # one at a time, so an interrupted demo resumes where it stopped
            r = ingest_with_dagster(settings, [f], progress=RichProgress(bar),
                                    instance=instance)[0]
            results.append(r)
            d = r.as_dict()
            for k in totals:
                totals[k] += int(d[k])  # type: ignore[call-overload]
            if d["status"] == "loaded" and r.run_ok:
                done.add(str(d["partition_key"]))
                state_path.write_text(json.dumps({"ingested": sorted(done)}))
            else:
                failed.append(f"{d['source_file']}: {d['status']} {d['message'] or ''}".strip())
    err_console.print(f"ingested {len(results)} file(s): {totals['rows_read']:,} rows read, "
                      f"{totals['loaded']:,} loaded, {totals['duplicates']:,} duplicates, "
                      f"{totals['rejected']:,} rejected")
    for line in failed:
        err_console.print(f"[yellow]not loaded[/] {line} (see the Dagster UI)")


def resolve_entities(settings: Settings) -> None:
    """One incremental entity run over the sample (a no-op when nothing new was loaded)."""
    from cli.entity_run import resolve_with_dagster
    from cli.ingest import entity_line

    with err_console.status("resolving entities (the same person across files)…"):
        entity = resolve_with_dagster(settings)
    err_console.print(entity_line(entity))


def ensure_demo_key(settings: Settings) -> tuple[str, bool]:
    """The demo user's API key and whether it was created now (else read from demo_key)."""
    from creditlake.ledger import Ledger
    from creditlake.ledger import admin as ops
    from creditlake.ledger.errors import LedgerError, UserNotFound

    key_file = settings.home / KEY_FILE
    ledger = Ledger(settings.database_url)
    try:
        if key_file.exists():
            key = key_file.read_text().strip()
            try:
                ledger.authenticate(key)
                _top_up(ledger)
                return key, False
            except LedgerError:
                pass  # revoked, or the ledger was reset: issue a new one below
        try:
            ledger.get_user(DEMO_EMAIL)
            key = ops.create_key(ledger, DEMO_EMAIL)["api_key"]
            _top_up(ledger)
        except UserNotFound:
            key = ops.create_user(ledger, DEMO_EMAIL, DEMO_CREDITS, reason="demo")["api_key"]
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(key + "\n")
        os.chmod(key_file, 0o600)
        return key, True
    finally:
        ledger.close()


def _top_up(ledger) -> None:  # noqa: ANN001
    if ledger.get_user(DEMO_EMAIL).balance < TOP_UP_BELOW:
        ledger.add_credits(DEMO_EMAIL, DEMO_CREDITS, reason="demo top-up")


def example_requests(api_url: str, key: str) -> list[tuple[str, str]]:
    body = json.dumps({"filters": {"country": ["US", "GB", "DE"], "status": "active"},
                       "fields": ["email", "name", "phone", "country", "created_date"],
                       "sort": {"field": "created_date", "order": "desc"}, "limit": 5})
    people = json.dumps({"resolve": "entity", "filters": {"cluster_size": {"gte": 2}},
                         "fields": ["name", "email", "phone", "country"],
                         "sort": {"field": "name", "order": "asc"}, "limit": 3})
    return [
        ("query (1 credit per call + 1 per 100 records)",
         f"curl -s -X POST {api_url}/api/v1/query -H 'X-API-Key: {key}' "
         f"-H 'Content-Type: application/json' -d '{body}'"),
        ("one answer per person: records from several files merged (entity_id, cluster_size, "
         "match_probability, the record and agreement behind every field)",
         f"curl -s -X POST {api_url}/api/v1/query -H 'X-API-Key: {key}' "
         f"-H 'Content-Type: application/json' -d '{people}'"),
        ("credits", f"curl -s {api_url}/api/v1/credits -H 'X-API-Key: {key}'"),
        ("usage", f"curl -s {api_url}/api/v1/usage -H 'X-API-Key: {key}'"),
    ]


def demo(
    rows: Annotated[int, typer.Option(min=100, help="People in the sample (split across every "
                                                    "format, with duplicates).")] = 300_000,
    port: Annotated[int, typer.Option(help="API port.")] = 8000,
    ui_port: Annotated[int, typer.Option(help="Dagster UI port.")] = 3000,
    host: Annotated[str, typer.Option(help="Interface for the API and the UI.")] = "127.0.0.1",
    no_ui: Annotated[bool, typer.Option("--no-ui", help="Skip the Dagster UI and daemon.")
                     ] = False,
    no_serve: Annotated[bool, typer.Option(
        "--no-serve", help="Prepare only (sample, ingest, key); start nothing.")] = False,
) -> None:
    """Sample data in every format -> ingest -> demo user + API key -> API and Dagster UI.

    Runs until Ctrl-C, which stops every process it started. Running it again reuses the
    sample, the ingested files and the demo key in $CREDITLAKE_HOME.
    """
    from cli.launcher import Supervisor, api_service, dagster_services

    started = time.monotonic()
    settings = load_settings()
    if not no_serve:
        _check_ports(host, [port] + ([] if no_ui else [ui_port]))
    settings.home.mkdir(parents=True, exist_ok=True)
    settings.landing_dir.mkdir(parents=True, exist_ok=True)
    err_console.print(f"[bold]creditlake demo[/] in {settings.home}")
    try:
        files = ensure_sample(settings, rows)
        ingest_sample(settings, files)
        resolve_entities(settings)
    except KeyboardInterrupt:
        err_console.print("interrupted; run `creditlake demo` again to continue (files already "
                          "ingested are kept)")
        raise typer.Exit(130) from None
    key, created = ensure_demo_key(settings)
    key_note = ("new key, saved" if created else "saved key") + f" in {settings.home / KEY_FILE}"
    if no_serve:
        typer.echo(f"demo user      {DEMO_EMAIL}\nAPI key        {key}   ({key_note})\n"
                   "start the API and the Dagster UI with: creditlake dev")
        return
    services = [api_service(host, port)] + ([] if no_ui else dagster_services(host, ui_port))
    sup = Supervisor(settings, services)
    sup.install_signal_handlers()
    api_url = f"http://{_shown_host(host)}:{port}"
    with supervised(sup):
        sup.start()
        with err_console.status("starting the API" + ("" if no_ui else " and the Dagster UI")
                                + f" (logs in {sup.log_dir})…"):
            sup.wait_ready()
        if sup.stop_requested:
            return
        lines = [f"\nready in {time.monotonic() - started:.1f} s",
                 f"API            {api_url}   (OpenAPI UI: {api_url}/docs)"]
        if not no_ui:
            lines += [f"Dagster UI     http://{_shown_host(host)}:{ui_port}   (asset graph, runs, "
                      "checks; the daemon runs the landing sensor)",
                      f"landing dir    {settings.landing_dir}   (drop files here; picked up "
                      "within ~10 s)"]
        lines += [f"demo user      {DEMO_EMAIL}", f"API key        {key}   ({key_note})",
                  "", "try:"]
        for title, cmd in example_requests(api_url, key):
            lines += [f"# {title}", cmd]
        lines += ["", "Ctrl-C stops everything."]
        # plain lines, never wrapped: the curl commands must paste as printed
        typer.echo("\n".join(lines))
        sup.run_until_stopped()


def _check_ports(host: str, ports: list[int]) -> None:
    from cli.launcher import port_problem

    for p in ports:
        problem = port_problem(host, p)
        if problem:
            fail(f"{problem}; stop what is using it or choose another with --port/--ui-port",
                 code=2)


def _shown_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "") else host


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
