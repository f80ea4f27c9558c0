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
from hypothesis import strategies as st
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


# ------------------------------------------------------ hostile inputs on every operation
# The operations come from the OpenAPI document, so a new endpoint is covered without
# editing this list; tests/integration/test_api_hostile.py asserts the exact answers.

HOSTILE_TIMES = ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00",
                 "9999-12-31T23:59:59.999999", "2299-12-31T23:59:59-14:00",
                 "1900-01-01T00:00:00+14:00", "1899-12-31T23:59:59Z", "2024-02-30T25:61:61Z",
                 "+10000-01-01T00:00:00", "-0001-01-01", "2024-01-01T00:00:00+99:99"]
DATE_PARAMS = {"since", "until"}
HOSTILE_BODIES = {
    "array nested 50,000 deep": b"[" * 50_000 + b"]" * 50_000,
    "object nested 20,000 deep": b'{"a":' * 20_000 + b"1" + b"}" * 20_000,
    "filters nested 50,000 deep": b'{"filters": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
    "invalid UTF-8": b'{"email": "\xff\xfe", "filters": {"name": "\xc3\x28"}, "limit": 1}',
    "over the size limit": b'{"x": "' + b"y" * (2 << 20) + b'"}',
    "not JSON": b"\x00\x01{",
    "5,000-digit number": b'{"limit": 1' + b"0" * 5000 + b', "amount": 9' + b"9" * 5000 + b"}",
}
HOSTILE_STRINGS = ["%FF%FE", "%C3%28", "..%2F..%2Fetc%2Fpasswd", "x" * 5000, "%00", "-1",
                   "1e309", "99999999999999999999999", "NaN"]


def no_server_error(r: httpx.Response, what: str) -> None:
    assert r.status_code < 500, f"{what}: {r.status_code} {r.text[:300]}"
    assert r.headers.get("content-type", "").startswith(("application/json", "text/plain")), what


def _operations(base: str) -> list:
    api = schemathesis.openapi.from_url(f"{base}/docs/openapi.json")
    return [result.ok() for result in api.get_all_operations()]


def test_generated_cases_with_edge_datetimes(server):
    """Schemathesis' own cases for every operation, with an edge date-time (offsets that
    overflow, years 1 and 9999, impossible dates) put into every query string and every
    date-time field of the body (admin `expires_at`, the filters of a query): no 5xx."""
    base, key = server
    headers = {"X-API-Key": key, "Authorization": f"Bearer {ADMIN_TOKEN}"}
    failures: list[str] = []
    for op in _operations(base):
        @given(case=op.as_strategy(generation_mode=GenerationMode.POSITIVE),
               when=st.sampled_from(HOSTILE_TIMES))
        @settings(max_examples=max(4, MAX_EXAMPLES // 2), deadline=None, derandomize=True,
                  suppress_health_check=list(HealthCheck), database=None)
        def run(case, when) -> None:
            declared = {p["name"] for p in case.operation.definition.raw.get("parameters", [])
                        if p["in"] == "query"}
            case.query = {**(case.query or {}), **{k: when for k in DATE_PARAMS & declared}}
            if isinstance(case.body, dict):
                if case.path.endswith("/credits"):
                    case.body["expires_at"] = when
                if case.path.startswith(("/api/v1/query", "/api/v1/enrich")):
                    case.body["filters"] = {"ingested_at": {"gt": when}}
            case.call_and_validate(base_url=base, headers=headers, checks=[not_a_server_error])

        try:
            run()
        except Exception as exc:  # noqa: BLE001 - collect every operation's failure
            failures.append(f"{op.method.upper()} {op.path}: {exc}")
    assert not failures, "\n\n".join(failures)


def test_hostile_bodies_paths_and_params_on_every_operation(server):
    """Every operation, its path and auth filled in as schemathesis generates them, then sent
    with each hostile body (deep nesting, invalid UTF-8, oversize, not JSON, huge numbers),
    hostile query values and hostile path segments: a 4xx, never a 5xx."""
    base, key = server
    headers = {"X-API-Key": key, "Authorization": f"Bearer {ADMIN_TOKEN}"}
    seen: set[str] = set()
    with httpx.Client(base_url=base, timeout=60) as http:
        for op in _operations(base):
            method, what = op.method.upper(), f"{op.method.upper()} {op.path}"
            seen.add(op.path)
            case = _one_case(op)
            path = case.formatted_path
            for name, body in HOSTILE_BODIES.items():
                r = http.request(method, path, content=body,
                                 headers={**headers, "Content-Type": "application/json"})
                no_server_error(r, f"{what} with a body {name}")
                if "requestBody" in op.definition.raw:
                    assert r.status_code in (400, 413, 422), (what, name, r.status_code)
            params = [p["name"] for p in op.definition.raw.get("parameters", [])
                      if p["in"] == "query"]
            for value in HOSTILE_STRINGS + HOSTILE_TIMES:
                if params:
                    raw = "&".join(f"{p}={value}" for p in params)
                    r = http.request(method, f"{path}?{raw}", headers=headers,
                                     json=case.body if isinstance(case.body, dict) else None)
                    no_server_error(r, f"{what}?{raw[:80]}")
                if "{" in op.path:
                    evil = op.path.replace("{", "").replace("}", "")
                    for p in case.path_parameters or {}:
                        evil = evil.replace(p, value)
                    r = http.request(method, evil, headers=headers)
                    no_server_error(r, f"{method} {evil[:80]}")
            for bad in ({"X-API-Key": b"\xff\xfe\xc3\x28"}, {"X-API-Key": "k" * 10_000},
                        {"Authorization": b"Bearer " + "\u00e9".encode() * 10},
                        {"Idempotency-Key": "i" * 10_000}):
                r = http.request(method, path, headers={**headers, **bad},
                                 json=case.body if isinstance(case.body, dict) else None)
                no_server_error(r, f"{what} with header {next(iter(bad))}")
    assert {"/api/v1/admin/users", "/api/v1/admin/users/{user}/credits",
            "/api/v1/admin/keys/{key_id}/revoke", "/api/v1/usage", "/healthz"} <= seen, seen


def _one_case(op):
    """One schema-valid case of `op` (its path parameters and body filled in)."""
    found = []

    @given(case=op.as_strategy(generation_mode=GenerationMode.POSITIVE))
    @settings(max_examples=1, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def pick(case) -> None:
        found.append(case)

    pick()
    return found[0]
