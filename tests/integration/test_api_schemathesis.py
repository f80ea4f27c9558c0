"""Property-based run of the app's own OpenAPI document against the real app served by uvicorn
on a loopback port (own process, own chDB path): no 5xx, no response breaking its schema."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import schemathesis
from api_support import ADMIN_TOKEN, sqlite_url
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from creditlake.ledger import Ledger

SERVER = Path(__file__).parent.parent / "api_server.py"
MAX_EXAMPLES = int(os.environ.get("CREDITLAKE_SCHEMATHESIS_EXAMPLES", "12"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    home = tmp_path_factory.mktemp("schemathesis")
    db_url = sqlite_url(home)
    ledger = Ledger(db_url)
    user, key = ledger.create_user("fuzz@example.com", 10**9)
    ledger.close()
    port = _free_port()
    env = {**os.environ, "CREDITLAKE_HOME": str(home),
           "CREDITLAKE_CLICKHOUSE_URL": f"chdb://{home / 'chdb'}",
           "CREDITLAKE_DATABASE_URL": db_url, "CREDITLAKE_ADMIN_TOKEN": ADMIN_TOKEN,
           "CREDITLAKE_RATE_LIMIT": "1000000/60", "CREDITLAKE_REDIS_URL": ""}
    proc = subprocess.Popen([sys.executable, str(SERVER), str(port), "300"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        if proc.poll() is not None:
            pytest.fail(f"API server exited early:\n{proc.stdout.read()}")
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("API server did not become healthy")
        time.sleep(0.3)
    yield base, key.api_key
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance]


def test_openapi_contract(server):
    """Every operation of /docs/openapi.json, MAX_EXAMPLES generated cases each, with data
    that fits the schema and data that does not. Driven with hypothesis directly:
    schemathesis' lazy pytest fixture loader does not work with pytest 9."""
    base, key = server
    api = schemathesis.openapi.from_url(f"{base}/docs/openapi.json")
    headers = {"X-API-Key": key, "Authorization": f"Bearer {ADMIN_TOKEN}"}
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) >= 10
    paths = {op.path for op in operations}
    assert {"/api/v1/query", "/api/v1/query/count", "/api/v1/enrich", "/api/v1/enrich/bulk",
            "/api/v1/fields"} <= paths, paths
    failures: list[str] = []
    cases = [(op, mode) for op in operations
             for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)]
    for op, mode in cases:
        @given(case=op.as_strategy(generation_mode=mode))
        @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True,
                  suppress_health_check=list(HealthCheck), database=None)
        def run(case) -> None:
            case.call_and_validate(base_url=base, headers=headers, checks=CHECKS)

        try:
            run()
        except Unsatisfiable:  # nothing to make invalid (no parameters, e.g. /healthz)
            assert mode is GenerationMode.NEGATIVE and not op.path.startswith("/api/")
        except Exception as exc:  # noqa: BLE001 - collect every operation's failure
            failures.append(f"{op.method.upper()} {op.path} ({mode.value}): {exc}")
    assert not failures, "\n\n".join(failures)
