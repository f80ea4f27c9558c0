"""End to end through the Dagster assets and checks on real chDB (a fresh database per test):
every format of the spine, duplicates within and across files, bad rows, idempotency,
quarantine and the landing sensor (the reject policy: test_reject_policy.py)."""

import gzip
import json
import time
from pathlib import Path

import dagster as dg
import polars as pl
import pyarrow as pa
import pytest

from cli.runner import ingest_with_dagster
from creditlake import quality, samples
from creditlake.quality import duplicate_hashes, reconciliation

pytestmark = pytest.mark.integration


@pytest.fixture
def instance():
    with dg.instance_for_test() as inst:
        yield inst


def people(n: int, offset: int = 0) -> pl.DataFrame:
    return samples.people(n, seed=offset + 1, id_offset=offset, invalid_rate=0,
                          duplicate_rate=0)


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    """CSV, JSON, JSONL (gzip), Parquet with different header styles, overlapping people,
    in-file duplicates and a few unusable rows."""
    d = tmp_path / "in"
    base = people(400)
    samples.write(samples.styled(base.slice(0, 200), "crm"), d / "crm.csv", "csv")
    samples.write(samples.styled(base.slice(150, 150), "app"), d / "app.json", "json")
    samples.write(samples.styled(base.slice(250, 150), "legacy"), d / "legacy.parquet",
                  "parquet")
    # JSONL: 100 new people + 20 copies of CSV people + 5 in-file duplicates + 2 unusable rows
    rows = people(100, 10_000).rows(named=True)
    rows += base.slice(0, 20).rows(named=True) + rows[:5]
    rows += [{"email": "nope", "first_name": "X"}, {"first_name": "Nobody", "city": "Rome"}]
    (d / "events.jsonl.gz").write_bytes(gzip.compress(
        "\n".join(json.dumps(r) for r in rows).encode()))
    return d


def totals(results) -> dict[str, int]:
    keys = ("rows_read", "loaded", "duplicates", "rejected")
    return {k: sum(r.as_dict()[k] for r in results) for k in keys}


def test_directory_ingest_counts_and_reconciliation(settings, engine, instance, landing):
    results = ingest_with_dagster(settings, [landing], instance=instance, max_failure_rate=0.05)
    by_file = {r.manifest.source_file: r.as_dict() for r in results}
    assert set(by_file) == {"app.json", "crm.csv", "events.jsonl.gz", "legacy.parquet"}
    assert {f: r["format"] for f, r in by_file.items()} == {
        "app.json": "json", "crm.csv": "csv", "events.jsonl.gz": "jsonl",
        "legacy.parquet": "parquet"}
    assert all(r.run_ok for r in results), [r.as_dict() for r in results]
    t = totals(results)
    assert t["rows_read"] == 200 + 150 + 150 + 127
    # 400 distinct people from base + 100 new; everything else is a duplicate or rejected
    assert t["loaded"] == 500
    assert t["rejected"] == 2
    assert t["duplicates"] == t["rows_read"] - 500 - 2
    assert by_file["events.jsonl.gz"]["duplicates"] == 25
    assert engine.query_rows(f"SELECT count() FROM {engine.database}.records")[0][0] == 500
    assert reconciliation(engine).passed
    assert duplicate_hashes(engine).passed
    rej = engine.query_rows(f"SELECT source_file, source_row, raw_row, reasons "
                            f"FROM {engine.database}.rejected_records ORDER BY source_row")
    assert [r[1] for r in rej] == [126, 127]
    assert "Nobody" in rej[1][2] and any("identity" in x for x in rej[1][3])
    log = engine.query_rows(f"SELECT source_file, rows_read, loaded, duplicates, rejected, "
                            f"status FROM {engine.database}.ingestion_log FINAL")
    assert len(log) == 4 and all(r[5] == "loaded" for r in log)


def test_normalized_values_land_in_clickhouse(settings, engine, instance, tmp_path):
    f = tmp_path / "one.csv"
    f.write_text("E-Mail,Full Name,Mobile,Country,Created,Status,Loyalty Tier\n"
                 " ANN@X.COM ,  Ann   Lee ,020 7123 4567,England,31/12/2019,Enabled,gold\n")
    ingest_with_dagster(settings, [f], instance=instance)
    row = engine.query_arrow(
        f"SELECT email, name, phone, country, created_date, status, metadata, "
        f"validation_errors, data_quality_score, record_hash FROM {engine.database}.records"
    ).to_pylist()[0]
    assert row["email"] == "ann@x.com" and row["name"] == "Ann Lee"
    assert row["phone"] == "+442071234567" and row["country"] == "GB"
    assert str(row["created_date"]) == "2019-12-31" and row["status"] == "active"
    assert json.loads(row["metadata"]) == {"Loyalty Tier": "gold"}
    assert row["validation_errors"] == [] and 0 < row["data_quality_score"] <= 1
    from creditlake.rules.identity import python_hash
    assert row["record_hash"] == python_hash(
        {"email": "ann@x.com", "phone": "+442071234567", "name": "Ann Lee"})


def test_rerun_is_idempotent_and_same_content_is_one_partition(settings, engine, instance,
                                                               landing):
    first = ingest_with_dagster(settings, [landing], instance=instance, max_failure_rate=0.05)
    again = ingest_with_dagster(settings, [landing], instance=instance, max_failure_rate=0.05)
    assert [r.as_dict()["partition_key"] for r in first] == \
        [r.as_dict()["partition_key"] for r in again]
    timing = ("seconds", "stage_seconds", "run_id")
    strip = [{k: v for k, v in r.as_dict().items() if k not in timing} for r in again]
    assert strip == [{k: v for k, v in r.as_dict().items() if k not in timing} for r in first]
    assert engine.query_rows(f"SELECT count() FROM {engine.database}.records")[0][0] == 500
    assert len(instance.get_dynamic_partitions("landing_files")) == 4
    assert reconciliation(engine).passed


def test_load_again_without_staging_keeps_the_rows(settings, engine, instance, tmp_path):
    """Re-materializing dedup/records alone (staging already dropped) must not delete the
    file's loaded rows; it leaves them and the counts as they are."""
    from creditlake.ingest.load import load

    f = tmp_path / "a.csv"
    f.write_text("email\na@x.co\nb@x.co\n")
    (r,) = ingest_with_dagster(settings, [f], instance=instance)
    again = load(engine, settings.home, r.manifest.key)
    assert (again.status, again.loaded) == ("loaded", 2)
    assert engine.query_rows(f"SELECT count() FROM {engine.database}.records")[0][0] == 2


def test_a_date_before_1970_is_dropped_with_a_finding(settings, engine, instance, tmp_path):
    """records.created_date is a ClickHouse Date (1970..2149): an older date is dropped with
    its finding and the file loads (it was silently clamped to 1970-01-01, or failed the
    file's insert on the direct pipeline)."""
    f = tmp_path / "old.csv"
    f.write_text("email,signup_date\nold@x.co,1965-03-04\nnew@x.co,2020-01-02\n")
    (r,) = ingest_with_dagster(settings, [f], instance=instance)
    assert (r.manifest.status, r.manifest.loaded) == ("loaded", 2)
    rows = {e: (d, errs) for e, d, errs in engine.query_rows(
        f"SELECT email, toString(created_date), validation_errors FROM {engine.database}.records")}
    assert rows["new@x.co"] == ("2020-01-02", [])
    assert rows["old@x.co"][0] is None
    assert any("created_date" in e for e in rows["old@x.co"][1])


def test_changed_file_is_a_new_partition(settings, engine, instance, tmp_path):
    f = tmp_path / "a.csv"
    f.write_text("email\na@x.co\n")
    k1 = ingest_with_dagster(settings, [f], instance=instance)[0].manifest.key
    f.write_text("email\na@x.co\nb@x.co\n")
    r2 = ingest_with_dagster(settings, [f], instance=instance)[0].as_dict()
    assert r2["partition_key"] != k1 and (r2["loaded"], r2["duplicates"]) == (1, 1)


@pytest.mark.parametrize("name,content,reason", [
    ("garbage.csv", bytes(range(256)) * 50, "unrecognized"),
    ("empty.csv", b"", "empty"),
])
def test_unreadable_files_are_quarantined_with_a_reason(settings, engine, instance, tmp_path,
                                                        name, content, reason):
    (tmp_path / name).write_bytes(content)
    (tmp_path / "good.csv").write_text("email\nok@x.co\n")
    res = {r.manifest.source_file: r for r in
           ingest_with_dagster(settings, [tmp_path], instance=instance)}
    assert res["good.csv"].manifest.status == "loaded"  # the bad file does not stop others
    bad = res[name].manifest
    assert bad.status == "quarantined" and reason in bad.message
    log = engine.query_rows(f"SELECT status, message, rows_read FROM {engine.database}"
                            ".ingestion_log FINAL WHERE source_file = {f:String}", {"f": name})
    assert log[0][0] == "quarantined" and reason in log[0][1]
    assert (settings.home / "quarantine" / name).exists()


def test_ragged_csv_rows_are_rejected_not_lost(settings, engine, instance, tmp_path):
    f = tmp_path / "ragged.csv"
    f.write_text("email,name\n" + "".join(f"u{i}@x.co,U{i}\n" for i in range(3000))
                 + "x@y.co,too,many\n")
    m = ingest_with_dagster(settings, [f], instance=instance)[0].manifest
    assert (m.rows_read, m.loaded, m.rejected) == (3001, 3000, 1)
    raw = engine.query_rows(f"SELECT raw_row, stage FROM {engine.database}.rejected_records")
    assert raw == [("x@y.co,too,many", "read")]


def test_landing_sensor_registers_partitions_once(settings, instance, tmp_path):
    from definitions import make_definitions

    settings.landing_dir.mkdir(parents=True, exist_ok=True)
    (settings.landing_dir / "a.csv").write_text("email\na@x.co\n")
    (settings.landing_dir / "sub").mkdir()
    (settings.landing_dir / "sub" / "b.jsonl").write_text('{"email": "b@x.co"}\n')
    (settings.landing_dir / "c.csv.part").write_text("email\n")  # still uploading
    past = time.time() - 60
    for p in settings.landing_dir.rglob("*"):
        if p.is_file():
            import os
            os.utime(p, (past, past))
    defs = make_definitions(settings)
    sensor = defs.resolve_sensor_def("landing_sensor")
    with dg.build_sensor_context(instance=instance, resources={"home": defs.resources["home"]}
                                 ) as ctx:
        result = sensor(ctx)
    keys = sorted(r.partition_key for r in result.run_requests)
    assert [k.split("@")[0] for k in keys] == ["a.csv", "sub/b.jsonl"]
    jobs = {r.partition_key.split("@")[0]: r.job_name for r in result.run_requests}
    assert jobs == {"a.csv": "land_csv", "sub/b.jsonl": "land_jsonl"}
    instance.add_dynamic_partitions("landing_files", keys)
    with dg.build_sensor_context(instance=instance, cursor=result.cursor,
                                 resources={"home": defs.resources["home"]}) as ctx:
        assert sensor(ctx).run_requests == []  # the same files are not ingested twice


def test_definitions_load_with_assets_checks_and_sensor(settings):
    from definitions import make_definitions

    defs = make_definitions(settings)
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert {"landing/csv", "landing/json", "landing/jsonl", "landing/parquet",
            "normalize/contacts", "dedup/records"} <= keys
    checks = {c.name for c in graph.asset_check_keys}
    assert {"failure_rate", "quality_score", "reconciliation", "hash_uniqueness"} <= checks
    assert defs.resolve_sensor_def("landing_sensor")


def test_truncated_gzip_loads_what_exists_and_says_so(settings, engine, instance, tmp_path):
    body = ("email,name\n" + "".join(f"u{i}@x.co,N{i}\n" for i in range(50_000))).encode()
    packed = gzip.compress(body)
    f = tmp_path / "cut.csv.gz"
    f.write_bytes(packed[: len(packed) * 2 // 3])
    m = ingest_with_dagster(settings, [f], instance=instance)[0].manifest
    assert m.status == "loaded" and "truncated" in m.message
    assert 0 < m.rows_read < 50_000 and m.loaded + m.duplicates + m.rejected == m.rows_read
    log = engine.query_rows(f"SELECT message FROM {engine.database}.ingestion_log FINAL")
    assert "truncated" in log[0][0]
    assert reconciliation(engine).passed


def test_header_only_file_is_logged_with_zero_rows(settings, engine, instance, tmp_path):
    f = tmp_path / "header.csv"
    f.write_text("email,name,phone\n")
    m = ingest_with_dagster(settings, [f], instance=instance)[0].manifest
    assert (m.status, m.rows_read, m.loaded) == ("loaded", 0, 0)
    assert "header only" in m.message


def test_per_source_mapping_overrides(settings, engine, instance, tmp_path):
    (settings.home / "mappings.yaml").write_text(
        'sources:\n  - match: "de_*.csv"\n'
        '    columns: {Kontakt: email, Rufnummer: phone, Angelegt: created_date}\n'
        '    date_format: "%d/%m/%Y"\n    default_country: DE\n    delimiter: ";"\n')
    f = tmp_path / "de_kunden.csv"
    f.write_text("Kontakt;Rufnummer;Angelegt\nanna@x.de;030 1234567;02/03/2020\n")
    r = ingest_with_dagster(settings, [f], instance=instance)[0]
    assert r.manifest.mappings["de_kunden.csv"]["targets"]["email"] == ["Kontakt"]
    row = engine.query_arrow(f"SELECT email, phone, country, created_date "
                             f"FROM {engine.database}.records").to_pylist()[0]
    assert row == {"email": "anna@x.de", "phone": "+49301234567", "country": "DE",
                   "created_date": __import__("datetime").date(2020, 3, 2)}
    log = engine.query_rows(f"SELECT mapping FROM {engine.database}.ingestion_log FINAL")
    assert json.loads(log[0][0])["de_kunden.csv"]["targets"]["phone"] == ["Rufnummer"]


@pytest.mark.parametrize("filter_max_rows", [quality.RUN_FILTER_MAX_ROWS, 0],
                         ids=["filtered", "in-order-scan"])
def test_hash_uniqueness_looks_only_at_the_run_s_hashes(settings, engine, instance, landing,
                                                        monkeypatch, filter_max_rows):
    """The check is scoped to the hashes a run loaded: a copy of one of its rows, under another
    file's key or its own, fails that file's check; another file's check does not report it.
    Both ways of finding them (a small run's filter, a big run's in-order scan) agree."""
    monkeypatch.setattr(quality, "RUN_FILTER_MAX_ROWS", filter_max_rows)
    results = ingest_with_dagster(settings, [landing], instance=instance, max_failure_rate=0.05)
    keys = {r.manifest.source_file: r.manifest.key for r in results}
    db = engine.database

    def copy_row(of: str, as_key: str) -> None:
        """A second copy of one of `of`'s rows, stored under ingest key `as_key`, in another
        country so that a merge does not fold it away."""
        row = engine.query_arrow(f"SELECT * FROM {db}.records WHERE ingest_key = {{k:String}} "
                                 f"LIMIT 1", {"k": of})
        for name, value in (("ingest_key", as_key), ("country", "ZZ")):
            i = row.schema.get_field_index(name)
            row = row.set_column(i, name, pa.array([value], row.schema.field(i).type))
        engine.insert_arrow(f"{db}.records", row)

    assert duplicate_hashes(engine, list(keys.values())).passed
    copy_row(keys["crm.csv"], "elsewhere")  # a duplicate across files
    assert engine.query_rows(f"SELECT count() FROM {db}.records")[0][0] == 501
    crm = duplicate_hashes(engine, [keys["crm.csv"]])
    assert not crm.passed and crm.metadata["sample"][0].endswith(" x2")
    assert not duplicate_hashes(engine).passed  # unscoped: the whole table
    assert duplicate_hashes(engine, [keys["legacy.parquet"], keys["app.json"]]).passed
    copy_row(keys["app.json"], keys["app.json"])  # a duplicate within one file's rows
    assert not duplicate_hashes(engine, [keys["app.json"]]).passed
    assert duplicate_hashes(engine, [keys["legacy.parquet"]]).passed
