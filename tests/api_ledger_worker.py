"""Child process for the multi-process overspend test: N threads charge COST each, prints the
number of successful debits. Imports only the ledger (fast start-up)."""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor

from creditlake.ledger import InsufficientCredits, Ledger, UsageRecord


def main(url: str, user_id: str, cost: int, n: int) -> int:
    ledger = Ledger(url, migrate=False)

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
