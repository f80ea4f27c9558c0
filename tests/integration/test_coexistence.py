"""The API and Dagster on one embedded engine, for real: separate processes, one data path.

The API server (`creditlake serve`, owner of its own fresh chDB path) answers concurrent
queries while `creditlake ingest DIR --json` (Dagster, in another process: a client of the
API's engine) loads several files, and while the Dagster daemon's landing sensor picks up a
file copied into the landing directory. Checked: every query is 200 or 503 + Retry-After,
the ledger charged exactly the cost formula over the 200s (nothing for 503s), every file is
loaded with rows_read = loaded + duplicates + rejected, the dropped file becomes queryable,
and stopping the processes releases the engine.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import polars as pl
import pytest

from cli.launcher import PROJECT_ROOT, Service, Supervisor, api_service
from cli.runner import DAGSTER_YAML
from creditlake.config import load_settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BIN = Path(sys.executable).parent
ARTIFACTS = PROJECT_ROOT / "test-artifacts"
QUERY_THREADS = 3
PAUSE_S = 0.02
BATCH = ("crm_export.csv", "app_users.jsonl", "warehouse.parquet", "crm_contacts.xml")
DROPPED = 120  # people in the file dropped into the landing directory


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stack_env(home: Path) -> dict[str, str]:
    """Our environment minus any CREDITLAKE_*/DAGSTER_* settings, pointed at `home`."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CREDITLAKE_", "DAGSTER_"))}
    env.update(CREDITLAKE_HOME=str(home), DAGSTER_HOME=str(home / "dagster"),
               CREDITLAKE_CLICKHOUSE_URL=f"chdb://{home / 'clickhouse'}",
               PYTHONUNBUFFERED="1",
               # every query reaches the engine (no result cache) and none is rate limited
               CREDITLAKE_CACHE_TTL="0", CREDITLAKE_RATE_LIMIT="1000000/60")
    return env


def write_inputs(tmp: Path) -> tuple[Path, Path]:
    """Several files of different formats (with cross-file duplicates) and one CSV of people
    that exist nowhere else, to drop into the landing directory later."""
    from creditlake import samples
    from creditlake.demo_data import write_demo_files

    batch = tmp / "batch"
    files = write_demo_files(batch, rows=4000)
    for f in files:  # keep a multi-format batch, small enough for a quick test
        if f.name not in BATCH:
            f.unlink()
    dropped = samples.people(DROPPED, seed=99, invalid_rate=0.0, duplicate_rate=0.0)
    dropped = dropped.with_columns(
        email=pl.format("landing-pickup-{}@example.org", pl.int_range(pl.len())))
    drop = tmp / "dropped_contacts.csv"
    dropped.write_csv(drop)
    return batch, drop


class Querier:
    """Threads firing varied /api/v1/query requests (varied so the result cache can't answer)."""

    def __init__(self, url: str, key: str) -> None:
        self.url, self.key = url, key
        self.results: list[tuple[int, int, int, float, str | None]] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True)
                         for i in range(QUERY_THREADS)]

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=120)

    def _run(self, seed: int) -> None:
        rnd = random.Random(seed)
        with httpx.Client(timeout=120) as client:
            while not self._stop.is_set():
                body = {"filters": {"country": rnd.sample(["US", "GB", "DE", "FR", "ES"], 2)},
                        "limit": rnd.choice([1, 20, 120, 250]), "offset": rnd.randint(0, 40)}
                t0 = time.perf_counter()
                try:
                    r = client.post(f"{self.url}/api/v1/query", json=body,
                                    headers={"X-API-Key": self.key})
                except httpx.HTTPError as exc:
                    self.errors.append(f"transport: {exc!r}")
                    continue
                ms = (time.perf_counter() - t0) * 1000
                doc = r.json()
                if r.status_code == 200:
                    meta = doc["metadata"]
                    self.results.append((200, meta["returned"], meta["credits_used"], ms, None))
                elif r.status_code == 503:
                    self.results.append((503, 0, 0, ms, r.headers.get("Retry-After")))
                else:
                    self.errors.append(f"{r.status_code}: {r.text[:300]}")
                # a customer-like pace: on 2 shared cores a tight loop would mostly measure
                # the CPU it takes away from the ingest
                self._stop.wait(PAUSE_S)


def api_query(url: str, key: str, body: dict) -> dict:
    r = httpx.post(f"{url}/api/v1/query", json=body, headers={"X-API-Key": key}, timeout=60)
    assert r.status_code == 200, r.text
    return r.json()


def test_api_queries_during_dagster_ingest_and_landing_pickup(tmp_path: Path) -> None:
    started = time.monotonic()
    home = tmp_path / "home"
    (home / "landing").mkdir(parents=True)
    env = stack_env(home)
    settings = load_settings(env)
    batch, drop = write_inputs(tmp_path)

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    daemon = Service("dagster-daemon", [str(BIN / "dagster-daemon"), "run", "-w",
                                        str(PROJECT_ROOT / "workspace.yaml")])
    (home / "dagster").mkdir()
    (home / "dagster" / "dagster.yaml").write_text(DAGSTER_YAML)
    sup = Supervisor(settings, [api_service("127.0.0.1", port), daemon], env=env)
    querier: Querier | None = None
    try:
        sup.start()
        sup.wait_ready(timeout=120)
        print(f"stack up after {time.monotonic() - started:.1f} s", flush=True)
        user = subprocess.run([str(BIN / "creditlake"), "admin", "user", "create",
                               "coexist@example.com", "--credits", "10000000", "--json"],
                              env=env, capture_output=True, text=True, timeout=60, check=True)
        key = json.loads(user.stdout)["api_key"]

        querier = Querier(url, key)
        querier.start()
        t0 = time.monotonic()
        # dropped while the CLI ingests the batch: the daemon's sensor starts its own run
        shutil.copy2(drop, home / "landing" / drop.name)
        ingest = subprocess.run([str(BIN / "creditlake"), "ingest", str(batch), "--json"],
                                env=env, capture_output=True, text=True, timeout=300,
                                cwd=PROJECT_ROOT)
        ingest_s = time.monotonic() - t0
        print(f"ingest {ingest_s:.1f} s, {len(querier.results)} queries so far", flush=True)
        assert ingest.returncode == 0, ingest.stdout[-3000:] + ingest.stderr[-3000:]
        report = json.loads(ingest.stdout)
        assert report["totals"]["files"] == len(BATCH)
        for f in report["files"]:
            assert f["status"] == "loaded", f
            assert f["rows_read"] == f["loaded"] + f["duplicates"] + f["rejected"], f
        assert report["totals"]["duplicates"] > 0  # the batch repeats people across files

        probe = {"filters": {"email": "landing-pickup-7@example.org"}, "limit": 5}
        found, probe_costs = 0, []
        while time.monotonic() - t0 < 240 and not found:
            sup.check_alive()
            meta = api_query(url, key, probe)["metadata"]
            probe_costs.append((meta["returned"], meta["credits_used"]))
            found = meta["total_records"]
            time.sleep(0 if found else 2)
        pickup_s = time.monotonic() - t0
        assert found == 1, f"dropped file not queryable after {pickup_s:.0f} s"
        querier.stop()

        # reconciliation over every file, read through the API's engine (as its client);
        # the log row is final a moment after the rows become visible
        from creditlake.clickhouse.sharing import engine_session

        names = {f["source_file"] for f in report["files"]} | {drop.name}
        with engine_session(settings, role="test", mode="client") as eng:
            for _ in range(60):
                log = eng.query_rows(
                    f"SELECT source_file, rows_read, loaded, duplicates, rejected, status "
                    f"FROM {eng.database}.ingestion_log FINAL ORDER BY source_file")
                if {r[0] for r in log if r[5] == "loaded"} >= names:
                    break
                time.sleep(1)
        by_file = {r[0]: r for r in log}
        assert set(by_file) == names
        for name, rows_read, loaded, dups, rejected, status in log:
            assert status == "loaded", (name, status)
            assert rows_read == loaded + dups + rejected, name
        assert by_file[drop.name][2] == DROPPED
    finally:
        if querier is not None:
            querier.stop()
        sup.stop(grace=30)

    # no wrong charge: ledger debits == usage log == the cost formula over the 200s
    ok = [r for r in querier.results if r[0] == 200]
    busy = [r for r in querier.results if r[0] == 503]
    assert not querier.errors, querier.errors[:5]
    assert len(ok) > 20, f"only {len(ok)} queries answered"
    assert all(r[4] for r in busy), "503 without Retry-After"
    for _, returned, used, _, _ in ok:
        assert used == 1 + returned // 100
    for returned, used in probe_costs:
        assert used == 1 + returned // 100
    from creditlake.ledger import Ledger

    ledger = Ledger(settings.database_url)
    try:
        totals = ledger.ledger_totals("coexist@example.com")
        import sqlalchemy as sa

        with ledger.engine.connect() as conn:
            charged_503 = conn.execute(sa.text(
                "SELECT coalesce(sum(credits_used), 0) FROM api_usage_logs "
                "WHERE status_code = 503")).scalar_one()
    finally:
        ledger.close()
    formula = sum(1 + r[1] // 100 for r in ok) + sum(1 + n // 100 for n, _ in probe_costs)
    assert charged_503 == 0
    assert abs(totals["debited"]) == totals["usage_credits"] == formula
    assert totals["balance"] == 10_000_000 - totals["usage_credits"]

    # the engine lock was released: nobody owns the data path any more
    from creditlake.clickhouse.sharing import owner_status

    assert owner_status(settings)["owner"] is None

    lat = sorted(r[3] for r in querier.results)
    figures = {"queries": len(querier.results), "ok": len(ok), "503": len(busy),
               "p50_ms": round(statistics.median(lat), 1),
               "p99_ms": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))], 1),
               "ingest_s": round(ingest_s, 1), "pickup_s": round(pickup_s, 1),
               "rows_read": report["totals"]["rows_read"],
               "total_s": round(time.monotonic() - started, 1)}
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "coexistence.json").write_text(json.dumps(figures, indent=2))
    print("coexistence:", json.dumps(figures))
