"""Every admin function through the CLI (typer CliRunner) and the admin API, on SQLite and
PostgreSQL; both write the same ledger and see each other's changes."""

from __future__ import annotations

import json

import pytest
import typer
from api_support import ADMIN_TOKEN, api_settings, pg_schema_url, sqlite_url
from litestar.testing import TestClient
from typer.testing import CliRunner

from api.app import create_app
from cli import admin as admin_cli
from cli import serve as serve_cli
from creditlake.clickhouse import EngineUnavailable
from creditlake.ledger import ApiKeyRevoked, Ledger, UsageRecord

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        yield sqlite_url(tmp_path)
    else:
        with pg_schema_url(request.getfixturevalue("postgres_url")) as url:
            yield url


@pytest.fixture
def cli():
    app = typer.Typer()
    admin_cli.register(app)
    serve_cli.register(app)
    return app


@pytest.fixture
def run(cli, tmp_path, db_url):
    runner = CliRunner()
    env = {"CREDITLAKE_HOME": str(tmp_path / "home"), "CREDITLAKE_DATABASE_URL": db_url}

    def invoke(*args: str, ok: bool = True):
        result = runner.invoke(cli, list(args), env=env)
        if ok:
            assert result.exit_code == 0, (args, result.stdout, result.stderr, result.exception)
        return result

    return invoke


def no_engine():
    raise EngineUnavailable("admin endpoints never need ClickHouse")


@pytest.fixture
def api(tmp_path, db_url):
    settings = api_settings(tmp_path / "home", "chdb:///nonexistent", "x", db_url)
    with TestClient(create_app(settings, no_engine)) as c:
        yield c


def test_cli_admin_functions(run, db_url):
    created = json.loads(run("admin", "user", "create", "Ann@Example.com", "--credits", "25",
                             "--json").stdout)
    assert created["email"] == "ann@example.com" and created["balance"] == 25
    assert created["api_key"].startswith("sk_live_") and created["key_prefix"]
    text = run("admin", "user", "create", "bob@example.com").stdout
    assert "api_key:  sk_live_" in text and "shown once" in text

    dup = run("admin", "user", "create", "ann@example.com", ok=False)
    assert dup.exit_code == 1 and "already exists" in dup.stderr and dup.stdout == ""

    out = run("admin", "credits", "add", "ann@example.com", "--amount", "10",
              "--expires", "2099-06-01", "--reason", "promo").stdout
    assert "granted 10 credits" in out and "balance: 35" in out
    run("admin", "credits", "add", created["user_id"], "--amount", "5", "--json")
    bad = run("admin", "credits", "add", "ann@example.com", "--amount", "0", ok=False)
    assert bad.exit_code != 0
    missing = run("admin", "credits", "add", "zed@example.com", "--amount", "1", ok=False)
    assert missing.exit_code == 1 and "User not found: zed@example.com" in missing.stderr
    past = run("admin", "credits", "add", "ann@example.com", "--amount", "1",
               "--expires", "2001-01-01", ok=False)
    assert past.exit_code == 1 and "future" in past.stderr

    bal = json.loads(run("admin", "balance", "ann@example.com", "--json").stdout)
    assert bal["balance"] == 40
    assert [(g["reason"], g["expires_at"]) for g in bal["grants"]] == [
        ("promo", "2099-06-01T00:00:00Z"), ("signup", None), ("grant", None)]
    assert "balance 40" in run("admin", "balance", created["user_id"]).stdout

    key = json.loads(run("admin", "key", "create", "ann@example.com", "--json").stdout)
    ledger = Ledger(db_url, migrate=False)
    try:
        assert ledger.authenticate(key["api_key"]).id == key["key_id"]
        revoked = json.loads(run("admin", "key", "revoke", key["key_id"], "--json").stdout)
        assert revoked["revoked_at"]
        assert "revoked" in run("admin", "key", "revoke", created["key_id"]).stdout
        with pytest.raises(ApiKeyRevoked):
            ledger.authenticate(key["api_key"])
        assert run("admin", "key", "revoke", "nope", ok=False).exit_code == 1

        for status, ms in ((200, 5.0), (402, 9.0)):
            ledger.log_usage(UsageRecord("POST", "/api/v1/query", status, ms,
                                         user_id=created["user_id"]))
        ledger.charge(created["user_id"], 3, UsageRecord("POST", "/api/v1/query", 200, 7.0,
                                                         user_id=created["user_id"],
                                                         records_returned=250))
    finally:
        ledger.close()
    usage = json.loads(run("admin", "usage", "ann@example.com", "--since", "2020-01-01",
                           "--json").stdout)
    assert usage["totals"] == {"requests": 3, "credits_used": 3, "records_returned": 250,
                               "errors": 1}
    (day,) = usage["days"]
    assert day["p50_ms"] == 7.0 and day["p95_ms"] >= 7.0
    assert "3 requests, 3 credits" in run("admin", "usage", "ann@example.com").stdout
    assert run("admin", "usage", "ann@example.com", "--since", "soon", ok=False).exit_code == 1


@pytest.mark.parametrize("args", [
    ["admin"], ["admin", "user"], ["admin", "user", "create"], ["admin", "credits", "add"],
    ["admin", "balance"], ["admin", "key"], ["admin", "key", "create"], ["admin", "key", "revoke"],
    ["admin", "usage"], ["serve"], ["admin", "user", "list"], ["admin", "key", "list"],
])
def test_cli_help_everywhere(cli, args):
    result = CliRunner().invoke(cli, [*args, "--help"])
    assert result.exit_code == 0 and "Usage" in result.stdout


def test_admin_api_functions(api, db_url):
    r = api.post("/api/v1/admin/users", json={"email": "cy@example.com", "credits": 12},
                 headers=ADMIN)
    assert r.status_code == 201, r.text
    user = r.json()["data"]
    assert user["api_key"].startswith("sk_live_") and user["balance"] == 12
    uid = user["user_id"]
    r = api.post(f"/api/v1/admin/users/{uid}/credits",
                 json={"amount": 8, "expires_at": "2099-01-01T00:00:00Z", "reason": "promo"},
                 headers=ADMIN)
    assert r.status_code == 201 and r.json()["data"]["balance"] == 20
    assert r.json()["data"]["grant"]["expires_at"] == "2099-01-01T00:00:00Z"
    bal = api.get("/api/v1/admin/users/cy@example.com/balance", headers=ADMIN).json()["data"]
    assert bal["balance"] == 20 and [g["reason"] for g in bal["grants"]] == ["promo", "signup"]
    key = api.post(f"/api/v1/admin/users/{uid}/keys", headers=ADMIN).json()["data"]
    assert key["api_key"].startswith("sk_live_")
    # the new key works against the customer API, then is revoked at once
    assert api.get("/api/v1/credits", headers={"X-API-Key": key["api_key"]}).status_code == 200
    r = api.post(f"/api/v1/admin/keys/{key['key_id']}/revoke", headers=ADMIN)
    assert r.status_code == 200 and r.json()["data"]["revoked_at"]
    r = api.get("/api/v1/credits", headers={"X-API-Key": key["api_key"]})
    assert r.json()["error"]["code"] == "API_KEY_REVOKED"
    usage = api.get(f"/api/v1/admin/users/{uid}/usage", params={"since": "2020-01-01"},
                    headers=ADMIN).json()["data"]
    assert usage["totals"]["requests"] == 2 and usage["totals"]["errors"] == 1
    assert usage["days"][0]["requests"] == 2


def test_admin_api_errors(api):
    assert api.post("/api/v1/admin/users", json={"email": "a@b.co"}).status_code == 401
    r = api.post("/api/v1/admin/users", json={"email": "a@b.co"},
                 headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "INVALID_ADMIN_TOKEN"
    assert api.post("/api/v1/admin/users", json={"email": "a@b.co"},
                    headers={"X-Admin-Token": ADMIN_TOKEN}).status_code == 201
    r = api.post("/api/v1/admin/users", json={"email": "a@b.co"}, headers=ADMIN)
    assert r.status_code == 409 and r.json()["error"]["code"] == "CONFLICT"
    r = api.post("/api/v1/admin/users", json={"email": "not-an-email"}, headers=ADMIN)
    assert r.status_code == 400 and r.json()["error"]["code"] == "INVALID_REQUEST"
    r = api.get("/api/v1/admin/users/ghost@example.com/balance", headers=ADMIN)
    assert r.status_code == 404 and r.json()["error"]["code"] == "NOT_FOUND"
    r = api.post("/api/v1/admin/users/a@b.co/credits", json={"amount": -1}, headers=ADMIN)
    assert r.status_code == 400
    assert api.post("/api/v1/admin/keys/nope/revoke", headers=ADMIN).status_code == 404


def test_cli_and_api_share_the_ledger(run, api):
    created = json.loads(run("admin", "user", "create", "dee@example.com", "--credits", "3",
                             "--json").stdout)
    api.post(f"/api/v1/admin/users/{created['user_id']}/credits", json={"amount": 4},
             headers=ADMIN)
    assert json.loads(run("admin", "balance", "dee@example.com", "--json").stdout)[
        "balance"] == 7


def test_admin_api_disabled_without_token(tmp_path):
    settings = api_settings(tmp_path / "h", "chdb:///nonexistent", "x", sqlite_url(tmp_path))
    settings = type(settings)(**{**settings.__dict__, "admin_token": None})
    with TestClient(create_app(settings, no_engine)) as c:
        r = c.post("/api/v1/admin/users", json={"email": "a@b.co"}, headers=ADMIN)
    assert r.status_code == 401 and "disabled" in r.json()["error"]["message"]


def test_cli_lists_users_and_keys_and_revokes_by_full_key(run, db_url):
    assert "no users yet" in run("admin", "user", "list").stdout
    assert json.loads(run("admin", "user", "list", "--json").stdout) == {"users": []}
    ann = json.loads(run("admin", "user", "create", "ann@example.com", "--credits", "7",
                         "--json").stdout)
    run("admin", "user", "create", "bob@example.com")
    users = json.loads(run("admin", "user", "list", "--json").stdout)["users"]
    assert [(u["email"], u["balance"]) for u in users] == [("ann@example.com", 7),
                                                          ("bob@example.com", 0)]
    assert users[0]["user_id"] == ann["user_id"] and users[0]["created_at"].endswith("Z")
    assert "ann@example.com  balance 7" in run("admin", "user", "list").stdout

    second = json.loads(run("admin", "key", "create", "ann@example.com", "--json").stdout)
    ledger = Ledger(db_url, migrate=False)
    try:
        used = ledger.authenticate(second["api_key"])
        ledger.log_usage(UsageRecord("GET", "/api/v1/credits", 200, 1.0,
                                     user_id=ann["user_id"], api_key_id=used.id))
    finally:
        ledger.close()
    keys = json.loads(run("admin", "key", "list", ann["user_id"], "--json").stdout)["keys"]
    assert [k["key_id"] for k in keys] == [ann["key_id"], second["key_id"]]
    assert [k["key_prefix"] for k in keys] == [ann["key_prefix"], second["key_prefix"]]
    assert keys[0]["last_used_at"] is None and keys[1]["last_used_at"].endswith("Z")
    assert all(k["created_at"] and k["revoked_at"] is None for k in keys)
    text = run("admin", "key", "list", "ann@example.com").stdout
    assert "last used never" in text and "active" in text

    # a customer reports a leaked key: revoke it by the key itself
    revoked = json.loads(run("admin", "key", "revoke", second["api_key"], "--json").stdout)
    assert revoked["key_id"] == second["key_id"] and revoked["revoked_at"]
    keys = json.loads(run("admin", "key", "list", "ann@example.com", "--json").stdout)["keys"]
    assert [k["revoked_at"] is not None for k in keys] == [False, True]

    # with --json, errors are one JSON document on stderr too (and nothing on stdout)
    for args in (("admin", "key", "list", "zed@example.com"),
                 ("admin", "key", "revoke", "sk_live_neverissued"),
                 ("admin", "balance", "zed@example.com")):
        bad = run(*args, "--json", ok=False)
        assert bad.exit_code == 1 and bad.stdout == ""
        err = json.loads(bad.stderr)["error"]
        assert err["code"] in ("UserNotFound", "KeyNotFound") and err["message"]
        assert "sk_live_neverissued" not in bad.stderr  # a full key is never echoed back
        plain = run(*args, ok=False)
        assert plain.stderr.startswith("error: ")


def test_admin_api_lists_users_and_keys(api):
    uid = api.post("/api/v1/admin/users", json={"email": "lu@example.com", "credits": 2},
                   headers=ADMIN).json()["data"]["user_id"]
    users = api.get("/api/v1/admin/users", headers=ADMIN).json()["data"]["users"]
    assert [(u["user_id"], u["balance"]) for u in users] == [(uid, 2)]
    keys = api.get("/api/v1/admin/users/lu@example.com/keys", headers=ADMIN).json()["data"]
    assert len(keys["keys"]) == 1 and keys["keys"][0]["last_used_at"] is None
    assert api.get("/api/v1/admin/users/nobody@example.com/keys",
                   headers=ADMIN).status_code == 404


def test_serve_refuses_a_taken_port_before_start_up(cli, tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(cli, ["serve", "--port", str(port)],
                                    env={"CREDITLAKE_HOME": str(tmp_path / "home")})
    assert result.exit_code == 2
    assert f"port {port} on 127.0.0.1 is not available" in result.stderr
    assert "--port" in result.stderr
