"""Parity: the same fixture files through the three normalize backends - Polars + Pandera, the
rules compiled to ClickHouse SQL (run inside chDB, Pandera as the gate) and the rules compiled to
PySpark (local[2]) - give identical record_hash sets, normalized values, rejects and
loaded/duplicate/rejected counts, and the shared rule cases (phones, e-mails, dates) the same
values and findings. All write to real chDB databases."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from creditlake import samples
from creditlake.clickhouse import ClickHouseEngine
from creditlake.clickhouse.ddl import migrate
from creditlake.config import Processing
from creditlake.ingest.land import land
from creditlake.ingest.load import load
from creditlake.ingest.manifest import Manifest, load_manifest
from creditlake.ingest.normalize import normalize
from creditlake.ingest.registry import Registry

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# Edge cases the generated samples do not cover: Unicode whitespace, null tokens, extensions,
# mailto:, phone-prefix country inference (incl. a region pycountry lacks), date zoo,
# non-ASCII upper-case names (hash lowercasing), rows without identity, invalid North
# American / UK / German phones, a bracketed trunk prefix, an e-mail with a space.
EDGE_CSV = """\
id,email,full name,phone,country,created,status,notes
1,  MAILTO:Ann.Lee@Example.COM ,ÉMILE  Zola,+44 20 7946 0958 ext. 12,uk,\
2021-03-04T10:00:00Z,Active,a
2,<bob@example.org>,Bob\u00a0 Stone,020 7946 0000,England,4 Mar 2021,ENABLED,b
3,N/A,Carla Díaz,0034 612 345 678,,03/04/2021,weird-status,c
4,dan@example,Dan,5551234,US,13/04/2021,0,d
,-,-,-,-,-,-,e
6,,Eve,+38344123456,,1/5/69,pending,f
7,fay@example.net,FAY,06 12 34 56 78,FR,20210304,n/a,g
8,gus@example.net,Gus,+1 (212) 555-0100 x7,USA,"March 4, 2021",closed,h
,,,,Germany,2021.03.04,blocked,i
10,hal@example.net,Hal 9000,12,Narnia,4 March 2021,suspended,j
1,ann.lee@example.com,émile zola,+442079460958,GB,2021-03-04,active,l
12,ivy@example.net,Ivy,333 1234567,IT,31/12/1899,1,k
13,jo@example.net,Jo,+1 212 555 012,,2021-03-04,active,m
14,kim@example.net,Kim,07911 1234,UK,2021-03-04,active,n
15,lou@example.net,Lou,+49 0151 23456789,,2021-03-04,active,o
16,max@example.net,Max,+44 (0)20 7946 0958,,2021-03-04,active,p
17,ned@exa mple.net,Ned,(212) 555-0123,US,2021-03-04,active,q
"""


@pytest.fixture(scope="module")
def spark() -> Iterator[object]:
    from creditlake.ingest import normalize as normalize_stage
    from creditlake.rules.spark import session

    # Tiny inputs: compiling generated code costs far more than interpreting it.
    s = session("creditlake-parity", "local[2]", {
        "spark.ui.enabled": "false", "spark.ui.showConsoleProgress": "false",
        "spark.sql.shuffle.partitions": "2", "spark.default.parallelism": "2",
        "spark.sql.adaptive.enabled": "false", "spark.sql.codegen.wholeStage": "false",
        "spark.sql.codegen.factoryMode": "NO_CODEGEN", "spark.driver.memory": "1g"})
    yield s
    s.stop()
    normalize_stage.spark_session.cache_clear()  # it may hold this (now stopped) session


@pytest.fixture(scope="module")
def landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("parity-landing")
    people = samples.people(3000, seed=11, invalid_rate=0.01)
    samples.write(samples.styled(people, "crm"), d / "crm.csv", "csv")
    # the same people again in another export style: cross-file duplicates
    samples.write(samples.styled(people.head(800), "app"), d / "app.jsonl", "jsonl")
    samples.write(samples.styled(samples.people(1500, seed=12, id_offset=50_000), "legacy"),
                  d / "legacy.parquet", "parquet")
    (d / "edge.csv").write_text(EDGE_CSV, encoding="utf-8")
    return d


FILES = ("crm.csv", "edge.csv", "app.jsonl", "legacy.parquet")
BACKENDS = ("polars", "clickhouse", "spark")
OTHERS = BACKENDS[1:]  # each compared with Polars (the reference)


def _run(engine: ClickHouseEngine, home: Path, landing: Path, processing: str,
         spark=None) -> dict[str, Manifest]:
    """land -> normalize -> load per file, in order (embedded), or land all -> one Spark
    normalize job for all (a backfill) -> load in the same order (Spark)."""
    from creditlake.ingest.normalize import spark as spark_stage

    keys = {}
    for f in FILES:
        entry = Registry(home).register(landing / f, landing)
        land(engine, home, entry)
        if processing != "spark":
            normalize(engine, home, entry.key, processing=Processing(processing))
            load(engine, home, entry.key)
        keys[f] = entry.key
    if processing == "spark":
        spark_stage.normalize_many(engine, home, list(keys.values()), spark=spark)
        for key in keys.values():
            load(engine, home, key)
    return {f: load_manifest(home, k) for f, k in keys.items()}


@pytest.fixture(scope="module")
def results(spark, landing: Path, chdb_path: Path, tmp_path_factory: pytest.TempPathFactory):
    engines = {p: ClickHouseEngine(f"chdb://{chdb_path}", f"parity_{p}_{uuid.uuid4().hex[:8]}")
               for p in BACKENDS}
    try:
        out = {}
        for p, eng in engines.items():
            migrate(eng)
            out[p] = (eng, _run(eng, tmp_path_factory.mktemp(f"home-{p}"), landing, p, spark))
        yield out
    finally:
        for eng in engines.values():
            eng.command(f"DROP DATABASE IF EXISTS {eng.database}")
            eng.close()


def _rows(eng: ClickHouseEngine, sql: str) -> list[tuple]:
    return eng.query_rows(sql.format(db=eng.database))


@pytest.mark.parametrize("other", OTHERS)
def test_counts_are_identical(results, other: str) -> None:
    (_, polars), (_, spark) = results["polars"], results[other]
    for f in polars:
        p, s = polars[f], spark[f]
        assert (s.rows_read, s.valid, s.loaded, s.duplicates, s.rejected, s.status) == \
            (p.rows_read, p.valid, p.loaded, p.duplicates, p.rejected, p.status), f
        assert s.quality_histogram == p.quality_histogram, f
        assert s.quality_mean == pytest.approx(p.quality_mean, abs=1e-6), f
        assert s.rows_read == s.loaded + s.duplicates + s.rejected
    assert sum(m.duplicates for m in polars.values()) > 800  # cross-file dups were exercised
    assert sum(m.rejected for m in polars.values()) > 30


@pytest.mark.parametrize("other", OTHERS)
def test_records_are_identical(results, other: str) -> None:
    sql = ("SELECT record_hash, source_file, user_id, email, name, phone, address, city, "
           "country, created_date, status, metadata, data_quality_score, "
           "arraySort(validation_errors) FROM {db}.records ORDER BY record_hash")
    p_rows = _rows(results["polars"][0], sql)
    s_rows = _rows(results[other][0], sql)
    assert len(p_rows) > 4000
    assert {r[0] for r in s_rows} == {r[0] for r in p_rows}
    diffs = [(p, s) for p, s in zip(p_rows, s_rows, strict=True) if p != s]
    assert not diffs, diffs[:3]


@pytest.mark.parametrize("other", OTHERS)
def test_rejects_and_log_are_identical(results, other: str) -> None:
    rej = ("SELECT source_file, source_row, stage, raw_row, arraySort(reasons) "
           "FROM {db}.rejected_records ORDER BY source_file, source_row")
    assert _rows(results[other][0], rej) == _rows(results["polars"][0], rej)
    log = ("SELECT partition_key, rows_read, loaded, duplicates, rejected, status "
           "FROM {db}.ingestion_log FINAL ORDER BY partition_key")
    assert _rows(results[other][0], log) == _rows(results["polars"][0], log)


@pytest.mark.parametrize("other", OTHERS)
def test_edge_rows_normalized_as_expected(results, other: str) -> None:
    """Spot checks on the edge file, so parity cannot hide a shared regression."""
    eng = results[other][0]
    rows = {r[0]: r[1:] for r in _rows(eng, (
        "SELECT JSONExtractString(metadata, 'notes'), user_id, email, phone, country, "
        "toString(created_date), status FROM {db}.records WHERE source_file = 'edge.csv'"))}
    assert rows["a"] == ("1", "ann.lee@example.com", "+442079460958", "GB", "2021-03-04",
                         "active")
    assert rows["f"][2:4] == ("+38344123456", "XK")  # inferred from the +383 prefix
    # Unicode lower-casing on both paths: "ÉMILE Zola" and "émile zola" are one identity
    assert "l" not in rows
    assert {"e", "i"}.isdisjoint(rows)  # no usable identity: rejected
    # invalid numbers keep their digits (and are flagged), valid ones are E.164
    assert [rows[k][2] for k in "mnopq"] == ["1212555012", "079111234", "49015123456789",
                                             "+442079460958", "+12125550123"]


def clickhouse_normalize(engine, mapped):
    """rules.clickhouse.normalize_select over a landed (mapped) Polars frame, in chDB."""
    import polars as pl

    from creditlake.ingest.normalize.clickhouse import LAND_COLUMNS, SQL_SETTINGS
    from creditlake.rules.clickhouse import normalize_select

    table = f"{engine.database}.rule_cases_{uuid.uuid4().hex[:8]}"
    engine.command(f"CREATE TABLE {table} ({LAND_COLUMNS}) ENGINE = MergeTree ORDER BY seq")
    try:
        engine.insert_arrow(table, mapped.with_row_index("seq").with_columns(
            pl.col("seq").cast(pl.UInt64)).to_arrow())
        out = pl.from_arrow(engine.query_arrow(normalize_select(table) + " ORDER BY seq",
                                               settings=SQL_SETTINGS))
    finally:
        engine.command(f"DROP TABLE IF EXISTS {table}")
    assert isinstance(out, pl.DataFrame)
    return out


def test_phone_and_email_rules_flag_the_same_rows(spark, engine) -> None:
    """The shared rule cases (invalid North American, UK, German numbers; e-mail syntax)
    give the same phone values, findings and scores on Spark and in ClickHouse SQL as on
    Polars."""
    import polars as pl
    from rule_cases import ADDRESS_CASES, DATE_CASES, EMAIL_CASES, PHONE_CASES

    from creditlake.rules import spark as rules_spark
    from creditlake.rules.mapping import infer_mapping
    from creditlake.rules.polars import clean, map_columns
    from creditlake.rules.validation import validate
    from creditlake.schema import SOURCE_FIELDS

    rows = ([{"email": "a@b.co", "phone": p, "country": c, "name": "Ann", "address": None,
              "created_date": None} for p, c, _, _ in PHONE_CASES]
            + [{"email": e, "phone": "+12125550123", "country": None, "name": "Ann",
                "address": None, "created_date": None} for e, _ in EMAIL_CASES]
            + [{"email": "a@b.co", "phone": None, "country": None, "name": "Ann",
                "address": a, "created_date": None} for a, _ in ADDRESS_CASES]
            + [{"email": "a@b.co", "phone": None, "country": "US", "name": "Ann",
                "address": None, "created_date": d} for d, _ in DATE_CASES])
    df = pl.DataFrame(rows, schema={k: pl.String for k in rows[0]}).with_row_index(
        "source_row", offset=1).with_columns(pl.col("source_row").cast(pl.UInt64))
    mapped = map_columns(df, infer_mapping(df.columns), "t.csv")
    polars_out = validate(clean(mapped)).valid.sort("source_row")
    sdf = spark.createDataFrame(mapped.to_dicts(), ", ".join(
        ["source_file string", "source_row long", *[f"{c} string" for c in SOURCE_FIELDS],
         "metadata string"]))
    spark_rows = rules_spark.validate(rules_spark.clean(sdf)).select(
        "source_row", "phone", "validation_errors", "data_quality_score", "country").collect()
    got = {r[0]: (r[1], sorted(r[2]), round(r[3], 6), r[4]) for r in spark_rows}
    want = {r["source_row"]: (r["phone"], sorted(r["validation_errors"]),
                              round(r["data_quality_score"], 6), r["country"])
            for r in polars_out.to_dicts()}
    assert got == want
    sql_rows = clickhouse_normalize(engine, mapped).filter(~pl.col("_fatal").cast(pl.Boolean))
    assert {r["source_row"]: (r["phone"], sorted(r["validation_errors"]),
                              round(r["data_quality_score"], 6), r["country"])
            for r in sql_rows.to_dicts()} == want
    for i, (_, _, stored, valid) in enumerate(PHONE_CASES, start=1):
        assert got[i][0] == stored
        assert any(e.startswith("phone:") for e in got[i][1]) is not valid
    for i, (_, valid) in enumerate(EMAIL_CASES, start=len(PHONE_CASES) + 1):
        assert any(e.startswith("email:") for e in got[i][1]) is not valid
    first = len(PHONE_CASES) + len(EMAIL_CASES) + 1
    for i, (_, country) in enumerate(ADDRESS_CASES, start=first):
        assert got[i][3] == country
    for i, (_, finding) in enumerate(DATE_CASES, start=first + len(ADDRESS_CASES)):
        dated = [e.split("'")[0] for e in got[i][1] if e.startswith("created_date:")]
        assert dated == ([f"created_date: {finding} "] if finding else []), got[i][1]


DATES = ["2021-03-04", "2021/3/4", "20210304", "2021.03.04", "3/4/2021", "13/4/2021",
         "03-04-2021", "13-04-2021", "4.3.2021", "4 Mar 2021", "4 mar 2021", "4 MARCH 2021",
         "Mar 4 2021", "March 4 2021", "Mar 4, 2021", "March 4, 2021", "3/4/21", "13/4/21",
         "1/5/69", "2021-03-04T10:00:00", "2021-03-04 10:00", "2021-02-30", "0999-01-01",
         "12345-01-01", "4 Sept 2021", "2021-3-4x", "31/12/1899", "1/1/2100", "", "abc",
         "2021-13-01", "04/03/2021", "29/02/2020", "29/02/2021"]


def test_date_rules_parse_identically(spark, engine) -> None:
    import polars as pl
    from pyspark.sql import functions as F  # noqa: N812

    from creditlake.rules.polars import parse_dates
    from creditlake.rules.spark import parse_date
    from creditlake.rules.vocab import DATE_MAX_YEAR, DATE_MIN_YEAR

    # compared within the accepted year range (clean() drops the rest on both paths)
    expected = [d if d and DATE_MIN_YEAR <= d.year <= DATE_MAX_YEAR else None
                for d in parse_dates(pl.Series("d", DATES)).to_list()]
    sdf = spark.createDataFrame([(d,) for d in DATES], "d string")
    parsed = parse_date(sdf["d"])
    in_range = F.when(F.year(parsed).between(DATE_MIN_YEAR, DATE_MAX_YEAR), parsed)
    got = [r[0] for r in sdf.select(in_range).collect()]
    assert list(zip(DATES, got, strict=True)) == list(zip(DATES, expected, strict=True))
    assert clickhouse_dates(engine, DATES + MORE_DATES) == [
        d if d and DATE_MIN_YEAR <= d.year <= DATE_MAX_YEAR else None
        for d in parse_dates(pl.Series("d", DATES + MORE_DATES)).to_list()]


# chrono's parsing quirks the SQL emulates (whitespace before numbers and for a format's
# spaces, long month names for %B, signed years, calendar checks, greedy %Y%m%d)
MORE_DATES = ["2021/ 3/ 4", " 2021/3/4", "4  Mar 2021", "4Mar2021", "4 march 2021",
              "4 Marc 2021", "+2021-03-04", "21-03-2021", "Mar 4,2021", "Mar 4 , 2021",
              "2021-03-04 ", "4 sept 2021", "2021034", "202113", "4\u00a0Mar 2021",
              "\u0662\u0660\u0662\u0661-03-04", "1900-02-29", "2000-02-29", "12/31/99",
              "June 4 2021", "may 4 2021", "4 Mayo 2021", "1/5/68", "2101-01-01"]


def clickhouse_dates(engine, values: list[str]) -> list:
    """rules.clickhouse's date rules (clean_select's date layers) over `values`."""
    import pyarrow as pa

    from creditlake.rules import clickhouse as rc
    from creditlake.rules.vocab import ISO_DATETIME_PATTERN

    table = f"{engine.database}.dates_{uuid.uuid4().hex[:8]}"
    engine.command(f"CREATE TABLE {table} (i UInt32, v Nullable(String)) "
                   "ENGINE = MergeTree ORDER BY i")
    try:
        engine.insert_arrow(table, pa.table({"i": pa.array(range(len(values)), pa.uint32()),
                                             "v": values}))
        sql = (f"SELECT i, replaceRegexpOne(v, {rc.regex(ISO_DATETIME_PATTERN)}, '\\\\1') "
               f"AS _date_text FROM {table}")
        for layer in rc.date_layers("_date_text"):
            exprs = ", ".join(f"{e} AS {n}" for n, e in layer.items())
            sql = f"SELECT *, {exprs} FROM ({sql})"
        rows = engine.query_rows(f"SELECT {rc.date_from_ymd()} FROM ({sql}) ORDER BY i")
    finally:
        engine.command(f"DROP TABLE IF EXISTS {table}")
    return [r[0] for r in rows]


def test_retried_batches_do_not_double_rows(engine, tmp_path: Path) -> None:
    """insert_deduplication_token per batch: a retried partition re-sends the same blocks."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from creditlake.ingest.normalize.spark import insert_batches, iter_parquet_batches

    out = tmp_path / "normalized"
    out.mkdir()
    for i in range(2):
        pq.write_table(pa.table({"k": list(range(i * 1000, i * 1000 + 1000))}),
                       out / f"part-{i:05d}.parquet")
    table = f"{engine.database}.dedup_probe"
    engine.command(f"CREATE TABLE {table} (k UInt64) ENGINE = MergeTree ORDER BY k "
                   "SETTINGS non_replicated_deduplication_window = 1000")
    for _ in range(3):  # first run + two retries
        insert_batches(engine, table, iter_parquet_batches(out, 300), token_prefix="p@1:stage")
    assert engine.query_rows(f"SELECT count(), uniqExact(k) FROM {table}")[0] == (2000, 2000)
    # a different partition with identical bytes is NOT dropped: tokens carry the key
    insert_batches(engine, table, iter_parquet_batches(out, 300), token_prefix="p@2:stage")
    assert engine.query_rows(f"SELECT count() FROM {table}")[0][0] == 4000


def test_engine_is_chosen_by_run_config(spark, settings, engine, landing: Path) -> None:
    """The ingest job's normalize asset runs on Spark when the run config says so."""
    import dagster as dg

    from assets.partitions import add_partitions
    from cli.runner import run_batch_jobs
    from creditlake.ingest import normalize as normalize_stage
    from definitions import make_definitions

    defs = make_definitions(settings, max_failure_rate=1.0)  # edge.csv rejects 2 of 13
    entry = Registry(settings.home).register(landing / "edge.csv", landing)
    run_config = {"ops": {"normalize__contacts": {"config": {"processing": "spark"}}}}
    with dg.instance_for_test() as instance:
        add_partitions(instance, [(entry.key, "csv")])
        run = run_batch_jobs(defs, instance, [entry.key], "csv", tags={},
                             run_config=run_config, raise_on_error=True)
    assert run.success
    m = load_manifest(settings.home, entry.key)
    assert normalize_stage.spark_session.cache_info().currsize == 1  # the Spark stage ran
    assert m.rows_read == m.loaded + m.duplicates + m.rejected and m.loaded > 0


def test_processing_setting_holds_on_every_path(spark, settings, engine, landing: Path) -> None:
    """CREDITLAKE_PROCESSING (Settings.processing) picks the backend for the direct pipeline
    and for the Dagster job the CLI runs, with no run config."""
    import dataclasses

    import dagster as dg

    from cli.runner import ingest_with_dagster
    from creditlake.ingest import normalize as normalize_stage
    from creditlake.ingest.pipeline import ingest_file

    def spark_calls() -> int:
        info = normalize_stage.spark_session.cache_info()
        return info.hits + info.misses

    on_spark = dataclasses.replace(settings, processing=Processing("spark"))
    before = spark_calls()
    m = ingest_file(engine, settings.home, landing / "crm.csv", processing=on_spark.processing,
                    landing_dir=landing)
    assert spark_calls() == before + 1
    assert m.status == "loaded" and m.rows_read == m.loaded + m.duplicates + m.rejected
    with dg.instance_for_test() as instance:
        r = ingest_with_dagster(on_spark, [landing / "app.jsonl"], instance=instance,
                                max_failure_rate=1.0)[0]
    assert r.run_ok and spark_calls() == before + 2
    m = r.manifest
    assert m.status == "loaded" and m.rows_read == m.loaded + m.duplicates + m.rejected
