"""Load-test a creditlake API deployment with Locust.

    CREDITLAKE_API_KEY=sk_live_... uv run locust -f tests/load/locustfile.py \\
        --host http://127.0.0.1:8000 --users 20 --spawn-rate 5 --run-time 2m --headless

Every request is a real, charged query: give the key enough credits and a high rate limit
(CREDITLAKE_RATE_LIMIT on the server), or expect 402/429 responses (counted as failures).
"""

from __future__ import annotations

import os
import random
from datetime import date, timedelta

from locust import HttpUser, between, task

COUNTRIES = ["US", "DE", "FR", "GB", "BR", "IN", "CN", "JP", "CA", "AU"]
STATUSES = ["active", "inactive", "pending", "suspended"]


def typical_query(limit: int) -> dict:
    start = date(2019, 1, 1) + timedelta(days=random.randrange(1400))
    return {"filters": {"country": random.choice(COUNTRIES), "status": random.choice(STATUSES),
                        "created_date": {"gte": start.isoformat(),
                                         "lte": (start + timedelta(days=365)).isoformat()}},
            "sort": {"field": "created_date", "order": "desc"}, "limit": limit}


class ApiCustomer(HttpUser):
    wait_time = between(0.05, 0.5)

    def on_start(self) -> None:
        key = os.environ.get("CREDITLAKE_API_KEY")
        if not key:
            raise RuntimeError("set CREDITLAKE_API_KEY (creditlake admin user create …)")
        self.client.headers.update({"X-API-Key": key})

    @task(10)
    def query_100(self) -> None:
        self.client.post("/api/v1/query", json=typical_query(100), name="query limit=100")

    @task(2)
    def query_1000(self) -> None:
        self.client.post("/api/v1/query", json=typical_query(1000), name="query limit=1000")

    @task(2)
    def price(self) -> None:
        self.client.post("/api/v1/query/count", json=typical_query(100), name="query/count")

    @task(1)
    def paginate(self) -> None:
        body = typical_query(100)
        with self.client.post("/api/v1/query", json=body, name="query page 1",
                              catch_response=True) as r:
            cursor = r.json().get("metadata", {}).get("next_cursor") if r.ok else None
        if cursor:
            self.client.post("/api/v1/query", json={**body, "cursor": cursor},
                             name="query next page")

    @task(1)
    def credits(self) -> None:
        self.client.get("/api/v1/credits", name="credits")
