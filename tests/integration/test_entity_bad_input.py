"""Hostile sources for entity resolution: one e-mail on every row, one person repeated 10,000
times, records with only a name. No giant cluster, no crash, and the run says what it skipped."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from creditlake.entity.model import load_model
from creditlake.entity.resolve import resolve
from creditlake.entity.suspicious import suspicious_clusters
from creditlake.entity.synthetic import generate_people, to_records_table

pytestmark = pytest.mark.integration


def _load(engine, table: pa.Table) -> None:
    engine.insert_arrow(f"{engine.database}.records", table)


def _biggest(engine) -> int:
    return int(engine.query_rows(
        f"SELECT max(cluster_size) FROM {engine.database}.entities FINAL")[0][0])


def _set(table: pa.Table, **values: object) -> pa.Table:
    for name, value in values.items():
        i = table.schema.get_field_index(name)
        table = table.set_column(i, name, pa.array([value] * table.num_rows,
                                                   table.schema.field(name).type))
    return table


def test_one_email_shared_by_every_row_glues_nobody(engine) -> None:
    people = to_records_table(generate_people(600, seed=4, dup_rate=0.0))
    _load(engine, _set(people, email="orders@shop-example.net"))
    res = resolve(engine, load_model(), "full")
    assert _biggest(engine) <= 3 and res.entities_total > 550
    assert suspicious_clusters(engine, load_model().max_cluster_size).passed


def test_an_incremental_batch_sees_placeholders_frequent_across_the_table(engine) -> None:
    """The batch's count is restricted to its own values, but counts over every record."""
    from creditlake.entity.resolve import frequent_values

    people = to_records_table(generate_people(400, seed=5, dup_rate=0.0))
    _load(engine, _set(people.slice(0, 300), email="orders@shop-example.net"))
    model = load_model()
    resolve(engine, model, "full")
    batch = people.slice(300)
    emails = ["  Orders@Shop-Example.NET "] + batch["email"].to_pylist()[1:]
    batch = batch.set_column(batch.schema.get_field_index("email"), "email", pa.array(emails))
    _load(engine, batch)
    got = frequent_values(engine, model.max_value_frequency, batch, "t1").to_pylist()
    assert got == [{"field": "email", "value": "orders@shop-example.net"}]
    res = resolve(engine, model, "incremental")
    assert res.records_in == 100 and _biggest(engine) <= 3


def test_one_person_repeated_ten_thousand_times_is_skipped_not_merged(engine) -> None:
    model = load_model()
    _load(engine, to_records_table(generate_people(300, seed=6)))
    resolve(engine, model, "full")
    one = to_records_table(generate_people(1, seed=8, dup_rate=0.0))
    copies = pa.concat_tables([one] * 10_000)
    ids = pa.array([f"00000000-0000-4000-8000-{i:012d}" for i in range(10_000)])
    copies = copies.set_column(copies.schema.get_field_index("id"), "id",
                               ids.cast(copies.schema.field("id").type))
    for col in ("user_id", "record_hash"):  # distinct ids: hash dedup cannot drop them
        copies = copies.set_column(copies.schema.get_field_index(col), col, pc.cast(
            pa.array(range(10_000)), pa.string()).cast(copies.schema.field(col).type))
    _load(engine, copies)
    res = resolve(engine, model, "incremental")
    assert res.records_in == 10_000
    assert res.skipped["repeated_identity_records"] == 10_000
    assert res.skipped["repeated_identity_groups"] == 1
    assert _biggest(engine) <= model.max_cluster_size


def test_name_only_records_are_not_merged_on_the_name(engine) -> None:
    people = to_records_table(generate_people(400, seed=9, dup_rate=0.0))
    bare = _set(people, email="", phone="", address="", city="", user_id="", metadata="{}")
    _load(engine, bare)
    res = resolve(engine, load_model(), "full")
    assert _biggest(engine) <= 2 and res.entities_total >= 390
