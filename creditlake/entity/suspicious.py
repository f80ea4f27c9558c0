"""Suspicious clusters: the symptoms of over-merging, computed in ClickHouse.

A cluster is suspicious when it is larger than the model's `max_cluster_size`, or when its
members carry more than `max_email_domains` distinct e-mail domains although every link in
it was made with high confidence (one person rarely has 3+ mail providers; a placeholder or
a shared family address that slipped through does exactly this).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from creditlake.clickhouse.base import Engine

MAX_EMAIL_DOMAINS = 2
HIGH_CONFIDENCE = 0.99


@dataclass
class SuspiciousReport:
    passed: bool
    entities_checked: int
    suspicious: list[dict[str, Any]] = field(default_factory=list)
    max_cluster_size: int = 0


def suspicious_clusters(engine: Engine, max_cluster_size: int,
                        max_email_domains: int = MAX_EMAIL_DOMAINS,
                        high_confidence: float = HIGH_CONFIDENCE,
                        limit: int = 20) -> SuspiciousReport:
    db = engine.database
    rows = engine.query_rows(f"""
        SELECT e.entity_id AS entity_id, count() AS size,
               uniqExactIf(splitByChar('@', r.email)[2], position(r.email, '@') > 0)
                   AS domains,
               min(e.match_probability) AS min_p,
               groupArray(5)(e.record_id) AS sample_ids,
               groupUniqArray(5)(splitByChar('@', r.email)[2]) AS sample_domains
        FROM {db}.records AS r
        RIGHT JOIN (SELECT record_id, entity_id, match_probability FROM {db}.entities FINAL)
            AS e ON toString(r.id) = e.record_id
        GROUP BY e.entity_id
        HAVING size > {int(max_cluster_size)}
            OR (domains > {int(max_email_domains)} AND min_p >= {float(high_confidence)})
        ORDER BY size DESC, entity_id
        LIMIT {int(limit)}
    """)
    checked, biggest = engine.query_rows(
        f"SELECT uniqExact(entity_id), max(cluster_size) FROM {db}.entities FINAL")[0]
    found = [{
        "entity_id": eid, "size": int(size), "email_domains": int(domains),
        "min_match_probability": round(float(min_p), 6), "sample_record_ids": list(ids),
        "sample_domains": [d for d in doms if d],
        "reason": "size" if size > max_cluster_size else "email_domains",
    } for eid, size, domains, min_p, ids, doms in rows]
    return SuspiciousReport(passed=not found, entities_checked=int(checked or 0),
                            suspicious=found, max_cluster_size=int(biggest or 0))
