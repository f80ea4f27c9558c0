"""Child process for the multi-process overspend test: N threads charge COST each, prints the
number of successful debits. Imports only the ledger (fast start-up)."""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor

from creditlake.ledger import InsufficientCredits, Ledger, UsageRecord
from creditlake.ledger.db import make_engine


def main(url: str, user_id: str, cost: int, n: int) -> int:
    # A small pool: threads queue for connections, PostgreSQL's max_connections stays safe.
    ledger = Ledger(make_engine(url, pool_size=8, max_overflow=4), migrate=False)

    def charge(_: int) -> bool:
        try:
            ledger.charge(user_id, cost, UsageRecord("POST", "/api/v1/query", 200, 1.0,
                                                     user_id=user_id))
            return True
        except InsufficientCredits:
            return False

    with ThreadPoolExecutor(max_workers=n) as pool:
        ok = sum(pool.map(charge, range(n)))
    ledger.close()
    return ok


if __name__ == "__main__":
    print(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
