"""GET /api/v1/fields and the OpenAPI document tell a newcomer everything needed for a query:
fields, types, operators, closed value sets, examples that work, headers and error codes."""

from __future__ import annotations

import pytest
from api_support import new_user
from litestar.testing import TestClient

from api.app import create_app
from api.config import ApiConfig
from creditlake.query import compile_query, parse_request
from creditlake.query.fields import FIELDS
from creditlake.schema import STATUSES


@pytest.fixture
def client(settings, engine, ledger):
    with TestClient(create_app(settings, engine, config=ApiConfig(cache_ttl_s=0),
                               ledger=ledger)) as c:
        yield c


def test_fields_lists_every_queryable_field_for_free(client, ledger):
    user_id, key = new_user(ledger, 5)
    r = client.get("/api/v1/fields", headers={"X-API-Key": key})
    assert r.status_code == 200 and r.headers["X-Request-Id"]
    body = r.json()
    by_name = {f["name"]: f for f in body["data"]}
    assert list(by_name) == list(FIELDS)
    assert by_name["status"]["values"] == list(STATUSES)
    assert "enabled" in by_name["status"]["synonyms"]["active"]
    assert "US" in by_name["country"]["values"] and by_name["country"]["value_names"]["US"]
    assert by_name["phone"]["reading"] and "country filter" in by_name["phone"]["reading"]
    assert set(body["metadata"]["operators"]) >= {op for f in FIELDS.values() for op in f.ops}
    assert ledger.balance(user_id) == 5  # free
    assert client.get("/api/v1/fields").json()["error"]["code"] == "MISSING_API_KEY"
    (row,) = [u for u in ledger.usage(user_id)[0] if u["endpoint"] == "/api/v1/fields"]
    assert row["credits_used"] == 0 and row["status_code"] == 200


def test_every_listed_operator_works_with_the_listed_example(client, ledger):
    _, key = new_user(ledger, 5)
    for f in client.get("/api/v1/fields", headers={"X-API-Key": key}).json()["data"]:
        for op in f["operators"]:
            value = (True if op == "is_null" else [f["example"]]
                     if op in ("in", "not_in", "has_any") else f["example"])
            q = compile_query(parse_request({"filters": {f["name"]: {op: value}}}), "db")
            assert q.filters_applied[f["name"]], (f["name"], op)


def test_openapi_documents_filters_headers_and_errors(client):
    doc = client.get("/docs/openapi.json").json()
    filters = doc["components"]["schemas"]["QueryRequest"]["properties"]["filters"]
    assert set(filters["properties"]) == set(FIELDS) and filters["additionalProperties"] is False
    assert filters["examples"][0]["country"] == "USA"
    assert "USA" in filters["properties"]["country"]["description"]
    for path, item in doc["paths"].items():
        for method, op in item.items():
            assert op.get("summary"), (method, path)
            for status, resp in op["responses"].items():
                assert "X-Request-Id" in resp.get("headers", {}), (path, status)
    query = doc["paths"]["/api/v1/query"]["post"]
    body = query["requestBody"]["content"]["application/json"]["schema"]
    assert query["description"] and body["examples"][0]["filters"]["country"] == "USA"
    ok = query["responses"]["200"]["headers"]
    assert {"X-Credits-Used", "X-Credits-Remaining", "X-RateLimit-Limit",
            "X-RateLimit-Remaining", "X-RateLimit-Reset", "Idempotent-Replayed"} <= set(ok)
    assert "Retry-After" in query["responses"]["429"]["headers"]
    assert {"400", "401", "402", "422", "429", "503"} <= set(query["responses"])
    codes = {e["value"]["error"]["code"]
             for e in query["responses"]["401"]["content"]["application/json"]["examples"]
             .values()}
    assert codes == {"MISSING_API_KEY", "INVALID_API_KEY", "API_KEY_REVOKED"}
    assert "/api/v1/fields" in doc["paths"]


def test_root_redirects_to_the_docs(client):
    r = client.get("/", follow_redirects=False)
    assert r.status_code == 302 and r.headers["location"] == "/docs/"
    assert client.get("/docs/").status_code == 200
