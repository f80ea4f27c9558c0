"""Prometheus metrics, one registry per app instance (tests build several apps per process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.latency = Histogram(
            "creditlake_api_request_seconds", "API request latency",
            ["endpoint", "method", "status"], registry=self.registry,
            buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
        self.credits = Counter("creditlake_credits_consumed_total", "Credits debited",
                               registry=self.registry)
        self.queries = Counter("creditlake_queries_total", "Query requests by outcome",
                               ["outcome"], registry=self.registry)
        fast = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
        self.engine_exec = Histogram("creditlake_engine_query_seconds",
                                     "Engine time of one API query (data + count)",
                                     registry=self.registry, buckets=fast)
        self.engine_wait = Histogram("creditlake_engine_wait_seconds",
                                     "Time a query waited for the (serialized) engine",
                                     registry=self.registry, buckets=fast)
        self.charge = Histogram("creditlake_ledger_charge_seconds",
                                "Debit + usage-log transaction time", registry=self.registry,
                                buckets=fast)
        self.count_cache_hits = Counter("creditlake_count_cache_hits_total",
                                        "total_records answered from the cache",
                                        registry=self.registry)
        self.records = Counter("creditlake_records_returned_total", "Records sold",
                               registry=self.registry)

        self.circuit = Gauge("creditlake_engine_circuit_state",
                             "ClickHouse circuit breaker: 1 for the current state",
                             ["state"], registry=self.registry)
        self.circuit_opened = Counter("creditlake_engine_circuit_opened_total",
                                      "Times the ClickHouse circuit opened",
                                      registry=self.registry)
        self.circuit_changed("closed")

    def circuit_changed(self, state: str) -> None:
        for s in ("closed", "open", "half_open"):
            self.circuit.labels(s).set(1 if s == state else 0)
        if state == "open":
            self.circuit_opened.inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
