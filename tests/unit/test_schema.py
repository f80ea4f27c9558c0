from creditlake.clickhouse.ddl import HASHES_VIEW, migrate, table_ddl
from creditlake.config import load_settings
from creditlake.schema import RECORD_FIELDS


def test_master_schema_fields_match_design():
    assert RECORD_FIELDS == (
        "id", "source_file", "record_hash", "ingested_at", "user_id", "email", "name", "phone",
        "address", "city", "country", "created_date", "status", "metadata",
        "data_quality_score", "validation_errors",
    )


def test_settings_defaults(tmp_path):
    s = load_settings({"CREDITLAKE_HOME": str(tmp_path)})
    assert s.embedded and s.chdb_path == tmp_path / "clickhouse"
    assert s.database_url == f"sqlite:///{tmp_path / 'ledger.db'}"
    assert s.landing_dir == tmp_path / "landing"


def test_migrate_is_idempotent(engine):
    migrate(engine)
    before = engine.query_rows(
        "SELECT name, create_table_query FROM system.tables WHERE database = {d:String} "
        "ORDER BY name", {"d": engine.database})
    migrate(engine)
    after = engine.query_rows(
        "SELECT name, create_table_query FROM system.tables WHERE database = {d:String} "
        "ORDER BY name", {"d": engine.database})
    assert before == after
    assert [n for n, _ in after] == sorted([*table_ddl(engine.database), HASHES_VIEW])


def test_migrate_adds_a_missing_column_and_table(engine):
    db = engine.database
    engine.command(f"ALTER TABLE {db}.ingestion_log DROP COLUMN held")
    engine.command(f"DROP TABLE {db}.rejected_records")
    migrate(engine)
    cols = {r[0] for r in engine.query_rows(
        "SELECT name FROM system.columns WHERE database = {d:String} AND table = "
        "'ingestion_log'", {"d": db})}
    assert "held" in cols
    assert engine.query_rows(f"EXISTS TABLE {db}.rejected_records")[0][0] == 1


def test_deletes_go_to_local_tables_on_a_cluster(engine):
    from creditlake.clickhouse.ddl_cluster import delete_target, delete_target_for

    assert delete_target(engine, "records") == f"{engine.database}.records"
    assert delete_target_for("Distributed", "db", "records", "main") == \
        "db.records_local ON CLUSTER 'main'"
    assert delete_target_for("ReplacingMergeTree", "db", "records", "main") == "db.records"
