"""Which files share an ingest run (creditlake/ingest/batches.py)."""

from creditlake.ingest.batches import (
    MAX_BATCH_BYTES,
    MAX_BATCH_FILES,
    SMALL_FILE_BYTES,
    Item,
    plan_batches,
    registration_order,
)


def keys(runs: list[list[Item]]) -> list[list[str]]:
    return [[i.key for i in run] for run in runs]


def test_small_files_of_one_format_share_a_run_big_files_run_alone() -> None:
    items = [Item("a.csv", "csv", 10), Item("big.csv", "csv", SMALL_FILE_BYTES + 1),
             Item("b.json", "json", 10), Item("c.csv", "csv", 10)]
    order = [i.key for i in registration_order(items)]
    assert keys(plan_batches(items, order)) == [["a.csv", "c.csv"], ["big.csv"], ["b.json"]]


def test_a_range_never_spans_a_key_it_does_not_contain() -> None:
    items = [Item("a", "csv", 1), Item("c", "csv", 1)]
    assert keys(plan_batches(items, ["a", "b", "c"])) == [["a"], ["c"]]


def test_batches_are_bounded() -> None:
    items = [Item(f"f{i:05d}", "csv", 1) for i in range(MAX_BATCH_FILES + 3)]
    runs = plan_batches(items, [i.key for i in items])
    assert [len(r) for r in runs] == [MAX_BATCH_FILES, 3]


def test_a_batch_holds_a_bounded_number_of_bytes() -> None:
    size = MAX_BATCH_BYTES // 3 + 1  # small files, but only two fit in one batch
    items = [Item(f"f{i}", "parquet", size) for i in range(5)]
    runs = plan_batches(items, [i.key for i in items])
    assert [len(r) for r in runs] == [2, 2, 1]
