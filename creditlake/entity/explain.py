"""Human-readable explanations of scored pairs and run summaries (Dagster metadata)."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from creditlake.entity.model import EntityModel


def _level_labels(model: EntityModel) -> dict[str, list[str]]:
    """comparison -> labels indexed by gamma (Splink numbers non-null levels bottom-up)."""
    out: dict[str, list[str]] = {}
    for comp in model.splink.get("comparisons", []):
        levels = [lvl.get("label_for_charts", "?") for lvl in comp["comparison_levels"]
                  if not lvl.get("is_null_level")]
        out[comp["output_column_name"]] = list(reversed(levels))
    return out


def explain_pairs(pairs: pa.Table, model: EntityModel, limit: int = 5) -> list[dict[str, Any]]:
    """The top `limit` pairs with each comparison's contribution to the match weight.

    Contribution = the level's trained weight log2(m/u) plus the term-frequency adjustment:
    positive values pushed the pair towards a match, negative ones away from it.
    """
    if pairs.num_rows == 0:
        return []
    labels = _level_labels(model)
    prior = model.splink.get("probability_two_random_records_match", 1e-4)
    rows = pairs.sort_by([("match_weight", "descending")])
    # Spread the examples over the probability range: best, borderline, weakest.
    n = rows.num_rows
    picks = list(range(n)) if n <= limit else sorted(
        {round(i * (n - 1) / (limit - 1)) for i in range(limit)})
    out = []
    for row in rows.take(picks).to_pylist():
        contributions = []
        for comp, lab in labels.items():
            gamma = row.get(f"gamma_{comp}")
            if gamma is None:
                continue
            weight = (row.get(f"mw_{comp}") or 0.0) + (row.get(f"mw_tf_adj_{comp}") or 0.0)
            level = "null (no evidence)" if gamma < 0 else lab[gamma]
            contributions.append({
                "comparison": comp, "level": level, "weight": round(weight, 2),
                "values": [row.get(f"{comp}_l"), row.get(f"{comp}_r")],
            })
        contributions.sort(key=lambda c: -abs(c["weight"]))
        out.append({
            "record_ids": [row["unique_id_l"], row["unique_id_r"]],
            "match_probability": round(row["match_probability"], 6),
            "match_weight": round(row["match_weight"], 2),
            "prior_weight": round(math.log2(prior / (1 - prior)), 2),
            "raised_by": [c for c in contributions if c["weight"] > 0],
            "lowered_by": [c for c in contributions if c["weight"] < 0],
        })
    return out


SIZE_BUCKETS = ((1, "1"), (2, "2"), (3, "3"), (5, "4-5"), (10, "6-10"), (50, "11-50"),
                (10**12, ">50"))


def size_distribution(cluster_sizes: pa.Array) -> dict[str, int]:
    """Entities per cluster-size bucket (input: one size per entity)."""
    counts: Counter[str] = Counter()
    vc = pc.value_counts(cluster_sizes).to_pylist()
    for item in vc:
        size, cnt = item["values"], item["counts"]
        label = next(lab for top, lab in SIZE_BUCKETS if size <= top)
        counts[label] += cnt
    return {lab: counts.get(lab, 0) for _, lab in SIZE_BUCKETS}
