"""Round trips through the real ingestion and the real API: every spelling ingestion accepts
finds the record it produced, and values no rule can read are a free 400 naming them."""

from __future__ import annotations

import csv

import pytest
from api_support import new_user
from litestar.testing import TestClient

from api.app import create_app
from api.config import ApiConfig
from creditlake.config import Processing
from creditlake.ingest.manifest import Status
from creditlake.ingest.pipeline import ingest_file

# One person per row, each field written the way some export writes it.
ROWS = [
    {"user_id": "rt-1", "email": "MAILTO:Ann.Lee@Example.COM", "name": "Ann   Lee",
     "phone": "+44 608 740 251", "city": "London", "country": "United Kingdom",
     "created_date": "01/15/2020", "status": "Active"},
    {"user_id": "rt-2", "email": " Bob.Stone@X.org ", "name": "Bob Stone",
     "phone": "(415) 555-0100", "city": "San  Francisco", "country": "USA",
     "created_date": "15.02.2021", "status": "ENABLED"},
    {"user_id": "rt-3", "email": "carla@y.de", "name": "Carla Diaz", "phone": "030 1234567",
     "city": "Berlin", "country": "Deutschland", "created_date": "2019-03-04T10:00:00Z",
     "status": "banned"},
    {"user_id": "rt-4", "email": "<dan@z.fr>", "name": "Dan Roy",
     "phone": "0033 1 23 45 67 89", "city": "Paris", "country": "fr",
     "created_date": "4 Mar 2018", "status": "Pending"},
]
QUERYABLE = ("email", "name", "phone", "city", "country", "created_date", "status")


@pytest.fixture
def client(settings, engine, ledger, tmp_path):
    path = tmp_path / "spellings.csv"
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(ROWS[0]))
        w.writeheader()
        w.writerows(ROWS)
    m = ingest_file(engine, settings.home, path, processing=Processing())
    assert m.status == Status.LOADED and m.loaded == len(ROWS)
    app = create_app(settings, engine, config=ApiConfig(cache_ttl_s=0), ledger=ledger)
    with TestClient(app) as c:
        yield c


def query(client, key, filters, **extra):
    return client.post("/api/v1/query", json={"filters": filters, "fields": ["user_id"],
                                              **extra}, headers={"X-API-Key": key})


@pytest.mark.parametrize("row", ROWS, ids=[r["user_id"] for r in ROWS])
def test_every_ingested_spelling_finds_its_record(client, ledger, row):
    _, key = new_user(ledger, 1000)
    for field in QUERYABLE:
        filters = {field: row[field]}
        if field == "phone" and not row["phone"].startswith(("+", "00")):
            filters["country"] = row["country"]  # a national number needs its country
        r = query(client, key, filters)
        assert r.status_code == 200, (filters, r.text)
        found = [d["user_id"] for d in r.json()["data"]]
        assert row["user_id"] in found, (filters, r.json()["metadata"]["filters_applied"])
    # and all of them at once, as a customer copying the source row would write it
    filters = {f: row[f] for f in QUERYABLE}
    r = query(client, key, filters)
    assert [d["user_id"] for d in r.json()["data"]] == [row["user_id"]], r.text


def test_filters_applied_says_how_values_were_read(client, ledger):
    _, key = new_user(ledger, 100)
    r = query(client, key, {"country": "USA", "status": "Enabled",
                            "phone": "415.555.0100", "email": "BOB.STONE@x.ORG"})
    meta = r.json()["metadata"]
    assert meta["filters_applied"] == {"country": ["US"], "status": ["active"],
                                       "phone": ["+14155550100"],
                                       "email": ["bob.stone@x.org"]}
    assert [d["user_id"] for d in r.json()["data"]] == ["rt-2"]
    count = client.post("/api/v1/query/count", json={"filters": {"country": "United States"}},
                        headers={"X-API-Key": key}).json()["data"]
    assert count["total_records"] == 1 and count["filters_applied"] == {"country": ["US"]}


@pytest.mark.parametrize(("filters", "field", "value"), [
    ({"country": "Narnia"}, "country", "Narnia"),
    ({"status": "sleepy"}, "status", "sleepy"),
    ({"phone": "call me now"}, "phone", "call me now"),
    ({"created_date": {"gte": "someday"}}, "created_date", "someday"),
])
def test_unreadable_values_are_400_and_free(client, ledger, filters, field, value):
    user_id, key = new_user(ledger, 10)
    for path in ("/api/v1/query", "/api/v1/query/count"):
        r = client.post(path, json={"filters": filters}, headers={"X-API-Key": key})
        assert r.status_code == 400, r.text
        err = r.json()["error"]
        assert err["code"] == "INVALID_QUERY"
        assert err["message"].startswith(f"{field}: cannot read {value!r}")
    assert ledger.balance(user_id) == 10
    assert ledger.ledger_totals(user_id)["debited"] == 0
