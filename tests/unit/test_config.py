"""Settings come from the env they are given, and only from it."""

from __future__ import annotations

from pathlib import Path

import pytest

from creditlake.config import DEFAULT_CLUSTER, Processing, Settings, load_settings


def test_defaults_follow_the_home_and_ignore_the_process_env(tmp_path: Path,
                                                              monkeypatch) -> None:
    monkeypatch.setenv("CREDITLAKE_LANDING_DIR", "/somewhere/else")
    monkeypatch.setenv("CREDITLAKE_PROCESSING", "spark")
    s = load_settings({"CREDITLAKE_HOME": str(tmp_path)})
    assert s.landing_dir == tmp_path / "landing"
    assert s.processing == Processing("polars")
    assert s.clickhouse_cluster == DEFAULT_CLUSTER
    assert (s.rate_limit, s.rate_window_s, s.cache_ttl_s) == (600, 60.0, 30.0)


def test_every_variable_is_read(tmp_path: Path) -> None:
    s = load_settings({
        "CREDITLAKE_HOME": str(tmp_path), "CREDITLAKE_LANDING_DIR": str(tmp_path / "in"),
        "CREDITLAKE_PROCESSING": " Spark ", "CREDITLAKE_SPARK_MASTER": "spark://h:7077",
        "CREDITLAKE_SPARK_CONF": '{"spark.driver.memory": "2g"}',
        "CREDITLAKE_CLICKHOUSE_CLUSTER": "prod", "CREDITLAKE_MAX_FAILURE_RATE": "0.05",
        "CREDITLAKE_RATE_LIMIT": "10/2", "CREDITLAKE_CACHE_TTL": "0",
        "CREDITLAKE_S3_LANDING": "s3://b/p", "CREDITLAKE_REDIS_PREFIX": "x"})
    assert s.landing_dir == tmp_path / "in"
    assert s.processing == Processing("spark", "spark://h:7077",
                                      (("spark.driver.memory", "2g"),))
    assert (s.clickhouse_cluster, s.max_failure_rate) == ("prod", 0.05)
    assert (s.rate_limit, s.rate_window_s, s.cache_ttl_s) == (10, 2.0, 0.0)
    assert (s.s3_landing, s.redis_prefix) == ("s3://b/p", "x")


def test_a_bad_processing_backend_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="CREDITLAKE_PROCESSING"):
        load_settings({"CREDITLAKE_HOME": str(tmp_path), "CREDITLAKE_PROCESSING": "pandas"})


def test_constructed_settings_default_the_landing_dir(tmp_path: Path) -> None:
    s = Settings(home=tmp_path, clickhouse_url="chdb://x", clickhouse_database="d",
                 database_url="sqlite://", redis_url=None, admin_token=None)
    assert s.landing_dir == tmp_path / "landing" and s.processing.backend == "polars"
