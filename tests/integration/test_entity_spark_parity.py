"""The Spark path (Splink SparkAPI on local[2]) gives the same clusters as DuckDB."""

from __future__ import annotations

import pytest

from creditlake.entity import linking
from creditlake.entity.model import load_model
from creditlake.entity.prepare import RECORD_INPUT_COLUMNS, prepare
from creditlake.entity.resolve import link_features
from creditlake.entity.synthetic import generate_people

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _partition(assign) -> set[frozenset[str]]:
    groups: dict[str, set[str]] = {}
    for rec, ent in zip(assign["record_id"].to_pylist(), assign["entity_id"].to_pylist(),
                        strict=True):
        groups.setdefault(ent, set()).add(rec)
    return {frozenset(g) for g in groups.values()}


def test_spark_and_duckdb_give_the_same_clusters() -> None:
    from creditlake.entity.spark import spark_api, spark_session

    people = generate_people(300, seed=4, placeholder_rate=0.03)
    feats = prepare(people.select(list(RECORD_INPUT_COLUMNS)))
    model = load_model()
    duck_pairs, duck = link_features(feats, model, linking.duckdb_api())
    # Tiny input: one task per stage, and no Java code generation (compiling generated code
    # for each of Splink's many small stages costs more than running them: 60 s -> 10 s).
    small = {"spark.sql.shuffle.partitions": "1", "spark.sql.adaptive.enabled": "false",
             "spark.sql.codegen.wholeStage": "false",
             "spark.sql.codegen.factoryMode": "NO_CODEGEN"}
    spark = spark_session()
    before = {k: spark.conf.get(k, None) for k in small}
    try:
        for k, v in small.items():
            spark.conf.set(k, v)
        spark_pairs, on_spark = link_features(feats, model, spark_api(spark, partitions=1))
    finally:  # the session is shared with other tests in this process
        for k, v in before.items():
            spark.conf.unset(k) if v is None else spark.conf.set(k, v)
    assert duck_pairs.num_rows == spark_pairs.num_rows > 0
    clusters = _partition(duck)
    assert any(len(c) > 1 for c in clusters)
    assert _partition(on_spark) == clusters
    # Same entity ids too (smallest member id): the embedded and scale-out outputs agree.
    assert dict(zip(duck["record_id"].to_pylist(), duck["entity_id"].to_pylist(),
                    strict=True)) == dict(zip(on_spark["record_id"].to_pylist(),
                                              on_spark["entity_id"].to_pylist(), strict=True))
