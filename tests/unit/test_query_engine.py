"""Compiled queries on real chDB (the `engine` fixture): filter semantics, injection values
executed literally, and cursor pagination that is stable and complete for every sort field."""

from __future__ import annotations

import json

import pytest
from api_support import seed_records, seeded_database

from creditlake.query import SORTABLE, InvalidQuery, compile_query, parse_request, run_query

N = 300


@pytest.fixture(scope="module")
def seeded(chdb_path):
    """One seeded database for the read-only tests of this module (same session chDB path)."""
    with seeded_database(chdb_path, N) as eng:
        yield eng


def run(engine, body):
    r = run_query(engine, compile_query(parse_request(body), engine.database))
    return r, json.loads(r.data_json)


def test_filters_match_expected_rows(seeded):
    r, rows = run(seeded, {"filters": {"country": "US"}, "limit": 10000, "fields": ["country"]})
    assert r.returned == r.total_records == N // 5 and {x["country"] for x in rows} == {"US"}
    r, _ = run(seeded, {"filters": {"country": ["US", "DE"], "status": "active"}, "limit": 1})
    # i % 5 in {0,1} and i % 4 == 0  ->  i % 20 in {0, 16}
    assert r.total_records == sum(1 for i in range(N) if i % 5 in (0, 1) and i % 4 == 0)
    r, rows = run(seeded, {"filters": {"created_date": {"gte": "2024-01-01", "lt": "2024-01-11"}},
                           "fields": ["created_date"], "limit": 10000})
    assert r.total_records == sum(1 for i in range(N) if i % 366 < 10 and i % 97)
    assert all("2024-01-01" <= x["created_date"] < "2024-01-11" for x in rows)
    r, _ = run(seeded, {"filters": {"created_date": {"is_null": True}}})
    assert r.total_records == sum(1 for i in range(N) if i % 97 == 0)
    r, rows = run(seeded, {"filters": {"email": {"contains": "USER12@"}}, "fields": ["email"]})
    assert [x["email"] for x in rows] == ["user12@example.com"]
    r, _ = run(seeded, {"filters": {"name": {"prefix": "Person 5"}}})
    assert r.total_records == sum(1 for i in range(N) if str(i).startswith("5"))
    r, _ = run(seeded, {"filters": {"validation_errors": "phone_invalid"}})
    assert r.total_records == N // 10
    r, _ = run(seeded, {"filters": {"data_quality_score": {"gte": 0.5, "lt": 0.6}}})
    assert r.total_records == sum(1 for i in range(N) if 50 <= i % 100 < 60)
    r, _ = run(seeded, {"filters": {"ingested_at": {"gte": "2025-01-01T00:00:00Z"}}, "limit": 1})
    assert r.total_records == N
    r, rows = run(seeded, {"fields": ["id", "created_date", "data_quality_score",
                                      "validation_errors", "ingested_at"], "limit": 1,
                           "filters": {"user_id": "10"}})
    assert rows[0]["validation_errors"] == ["phone_invalid"]
    assert rows[0]["ingested_at"].startswith("2025-01-01T00:00:00")
    r2, rows2 = run(seeded, {"filters": {"id": rows[0]["id"]}})
    assert r2.returned == 1 and rows2[0]["user_id"] == "10"


@pytest.mark.parametrize("evil", [
    "' OR 1=1 --", "US'; DROP TABLE records; --", "1) OR (1=1", "{p1:UInt32}", "\\' OR 1 --",
    "US' UNION ALL SELECT * FROM system.tables --", "%", "_",
])
def test_injection_values_are_literal(seeded, evil):
    for cond in (evil, [evil], {"contains": evil}, {"prefix": evil}):
        r, _ = run(seeded, {"filters": {"city": cond}})
        assert r.total_records == 0
    r, _ = run(seeded, {"filters": {"city": {"ne": evil}}, "limit": 1})
    assert r.total_records == N  # nothing matched the literal, table intact
    with pytest.raises(InvalidQuery, match="country: cannot read"):
        run(seeded, {"filters": {"country": evil}})  # not a country: refused before any SQL
    assert seeded.query_rows(f"SELECT count() FROM {seeded.database}.records")[0][0] == N


def walk(engine, body, page_size):
    rows, cursor, pages = [], None, 0
    while True:
        req = {**body, "limit": page_size, **({"cursor": cursor} if cursor else {})}
        r, page = run(engine, req)
        pages += 1
        assert r.page == pages and r.total_records == N if not body.get("filters") else True
        rows += page
        cursor = r.next_cursor
        if cursor is None:
            return rows, pages


@pytest.mark.parametrize("field", SORTABLE)
@pytest.mark.parametrize("order", ["asc", "desc"])
def test_cursor_pages_are_complete_and_ordered(seeded, field, order):
    body = {"sort": {"field": field, "order": order}, "fields": ["id", field] if field != "id"
            else ["id"]}
    _, full = run(seeded, {**body, "limit": 10000})
    rows, pages = walk(seeded, body, 64)
    assert len(full) == N and rows == full  # same rows, same order, no gaps or repeats
    assert pages == -(-N // 64)
    ids = [x["id"] for x in rows]
    assert len(set(ids)) == N
    # offset paging walks the same order
    offset_rows = []
    for off in range(0, N, 64):
        offset_rows += run(seeded, {**body, "limit": 64, "offset": off})[1]
    assert offset_rows == full


def test_cursor_stable_while_rows_arrive(engine):
    """Rows inserted mid-walk ahead of the cursor never duplicate rows already served."""
    seeded = engine
    seed_records(seeded, N)
    body = {"filters": {"country": "US"}, "sort": {"field": "created_date", "order": "asc"},
            "fields": ["id", "created_date"]}
    r, first = run(seeded, {**body, "limit": 50})
    seed_records(seeded, 50)  # more US rows, some sorting before the cursor
    rest, cursor = [], r.next_cursor
    while cursor:
        r, page = run(seeded, {**body, "limit": 50, "cursor": cursor})
        rest += page
        cursor = r.next_cursor
    served = [x["id"] for x in first + rest]
    assert len(served) == len(set(served))
    assert [x["created_date"] or "9999" for x in first + rest] == sorted(
        x["created_date"] or "9999" for x in first + rest)


def test_next_cursor_only_when_more_rows(seeded):
    r, _ = run(seeded, {"filters": {"country": "US"}, "limit": N // 5})
    assert r.next_cursor is None and r.returned == N // 5
    r, _ = run(seeded, {"filters": {"country": "US"}, "limit": N // 5 - 1})
    assert r.next_cursor is not None and r.total_records == N // 5


def test_rows_json_returns_metadata_as_an_object_and_errors_as_an_array():
    import pyarrow as pa

    from creditlake.query.execute import rows_json

    table = pa.table({
        "email": ["a@x.co", "line\nbreak\u2028sep", None, 'q"uote'],
        "metadata": ['{"loyalty":"gold","tier":null}', "", None, "not json"],
        "validation_errors": [["phone: invalid"], [], None, ["a", "b"]],
    })
    rows = json.loads(rows_json(table))
    assert rows == [
        {"email": "a@x.co", "metadata": {"loyalty": "gold", "tier": None},
         "validation_errors": ["phone: invalid"]},
        {"email": "line\nbreak\u2028sep", "metadata": {}, "validation_errors": []},
        {"email": None, "metadata": {}, "validation_errors": None},
        {"email": 'q"uote', "metadata": {}, "validation_errors": ["a", "b"]},
    ]
    assert json.loads(rows_json(table.select(["metadata"]))) == [
        {"metadata": {"loyalty": "gold", "tier": None}}, {"metadata": {}}, {"metadata": {}},
        {"metadata": {}}]
    assert rows_json(table.slice(0, 0)) == b"[]"


def test_api_rows_carry_metadata_objects(seeded):
    _, rows = run(seeded, {"limit": 20, "fields": ["metadata", "validation_errors"]})
    _, flagged = run(seeded, {"filters": {"validation_errors": "phone_invalid"}, "limit": 5,
                              "fields": ["metadata", "validation_errors"]})
    assert rows and flagged  # 20 rows in no particular order, plus rows known to be flagged
    assert all(isinstance(r["metadata"], dict) and isinstance(r["validation_errors"], list)
               for r in rows + flagged)
    assert all(r["validation_errors"] == ["phone_invalid"] for r in flagged)


def test_embedded_query_settings_apply_to_that_query_only(engine):
    """Per-call settings ride in the statement's SETTINGS clause (not SET … and restore on the
    shared handle): they bind the query, quoted values included, and nothing leaks."""
    from creditlake.clickhouse.base import EngineError

    sql = "SELECT number FROM numbers(5)"
    with pytest.raises(EngineError, match="(?i)limit for result exceeded"):
        engine.query_arrow(sql, settings={"max_result_rows": 2, "result_overflow_mode": "throw"})
    # the next call on the handle is unbound, and gets its own rows only (chDB hands a failed
    # Arrow query's partial output to the next query unless it is drained)
    assert engine.query_arrow(sql).column("number").to_pylist() == [0, 1, 2, 3, 4]
    got = engine.query_arrow("SELECT getSetting('log_comment') AS c, {p:String} AS p",
                             parameters={"p": "it's"}, settings={"log_comment": "a 'q' \\ b"})
    assert got.to_pylist() == [{"c": "a 'q' \\ b", "p": "it's"}]
    assert engine.query_arrow("SELECT getSetting('log_comment') AS c").to_pylist() == [{"c": ""}]
    with pytest.raises(ValueError, match="bad setting name"):
        engine.query_arrow(sql, settings={"max_threads = 1, readonly": 1})


def test_engine_writes_each_row_as_the_api_json_object(engine):
    """The page's rows come out of chDB as JSON text: escapes, NULLs, empty and flagged arrays,
    whole floats as floats, metadata spliced in as an object (or {}), fields in the requested
    order with metadata last, and nothing of the hidden cursor-key columns."""
    engine.command(f"""
        INSERT INTO {engine.database}.records
            (id, source_file, record_hash, ingested_at, user_id, email, created_date, metadata,
             data_quality_score, validation_errors)
        VALUES
            ('00000000-0000-4000-8000-000000000001', 'a/b.csv', 'h1', '2025-01-02 03:04:05.678',
             '1', 'a@x.co', '2024-02-29', '{{"loyalty":"gold","tier":null,"n":[1,2.5]}}', 0,
             ['phone: invalid']),
            ('00000000-0000-4000-8000-000000000002', 's.csv', 'h2', '2025-01-02 00:00:00',
             '2', 'line\\nbreak\u2028sep\\t"q" \\\\ é', NULL, '', 1, []),
            ('00000000-0000-4000-8000-000000000003', 's.csv', 'h3', '2025-01-02 00:00:00',
             '3', '', '2024-01-01', 'not json', 0.25, ['a', 'b'])""")
    fields = ["metadata", "email", "data_quality_score", "created_date", "validation_errors",
              "source_file", "id", "ingested_at"]
    r, rows = run(engine, {"fields": fields, "limit": 2})
    assert r.returned == 2 and r.next_cursor is not None and r.total_records == 3
    r2, rest = run(engine, {"fields": fields, "limit": 2, "cursor": r.next_cursor})
    assert r2.returned == 1 and r2.next_cursor is None
    assert [list(x) for x in rows + rest] == [[*fields[1:], "metadata"]] * 3
    assert rows + rest == [
        {"email": "a@x.co", "data_quality_score": 0.0, "created_date": "2024-02-29",
         "validation_errors": ["phone: invalid"], "source_file": "a/b.csv",
         "id": "00000000-0000-4000-8000-000000000001",
         "ingested_at": "2025-01-02T03:04:05.678000Z",
         "metadata": {"loyalty": "gold", "tier": None, "n": [1, 2.5]}},
        {"email": 'line\nbreak\u2028sep\t"q" \\ é', "data_quality_score": 1.0,
         "created_date": None, "validation_errors": [], "source_file": "s.csv",
         "id": "00000000-0000-4000-8000-000000000002",
         "ingested_at": "2025-01-02T00:00:00.000000Z", "metadata": {}},
        {"email": "", "data_quality_score": 0.25, "created_date": "2024-01-01",
         "validation_errors": ["a", "b"], "source_file": "s.csv",
         "id": "00000000-0000-4000-8000-000000000003",
         "ingested_at": "2025-01-02T00:00:00.000000Z", "metadata": {}}]
    assert all(isinstance(x["data_quality_score"], float) for x in rows + rest)
    assert b'"a/b.csv"' in r.data_json  # no "\/" escapes
    _, only = run(engine, {"fields": ["metadata"], "limit": 1})
    assert only == [{"metadata": {"loyalty": "gold", "tier": None, "n": [1, 2.5]}}]
    r0, none = run(engine, {"filters": {"country": "JP"}})
    assert none == [] and r0.data_json == b"[]"
