"""Credit arithmetic shared by the API, the CLI and tests."""

from __future__ import annotations


def credit_cost(records_returned: int) -> int:
    """cost = 1 + records_returned // 100 (0 rows -> 1, 100 -> 2, 1000 -> 11, 10000 -> 101)."""
    if records_returned < 0:
        raise ValueError("records_returned must be >= 0")
    return 1 + records_returned // 100
