"""Write merges and splits: the `entity_history` log and the `entity_aliases` map.

Each merge (absorbed id -> surviving id) becomes an alias, and every older alias that pointed
at the absorbed id is re-pointed at the survivor, so any id ever handed out resolves in one
lookup (creditlake/entity/lookup.py). Within one run every event already names the run's final
id, so no chain forms inside a run.
"""

from __future__ import annotations

from datetime import datetime

import pyarrow as pa

from creditlake.clickhouse.base import Engine


def _ts(at: datetime) -> str:
    return f"toDateTime64('{at.strftime('%Y-%m-%d %H:%M:%S.%f')[:-3]}', 3, 'UTC')"


def write_events(engine: Engine, events: pa.Table, run_id: str, model_version: str,
                 at: datetime) -> dict[str, int]:
    """Append `events` (entity_id, other_id, event) and update the aliases; counts by event."""
    if events.num_rows == 0:
        return {}
    db = engine.database
    n = events.num_rows
    engine.insert_arrow(f"{db}.entity_history", events.select(
        ["entity_id", "other_id", "event"]).append_column(
        "run_id", pa.array([run_id] * n)).append_column(
        "model_version", pa.array([model_version] * n)).append_column(
        "resolved_at", pa.array([at] * n, pa.timestamp("ms", "UTC"))))
    merges = (f"SELECT entity_id, other_id FROM {db}.entity_history"
              f" WHERE run_id = {{run:String}} AND event = 'merge'")
    engine.command(f"""
        INSERT INTO {db}.entity_aliases (alias_id, current_id, run_id, resolved_at)
        SELECT entity_id, other_id, {{run:String}}, {_ts(at)} FROM ({merges})
        UNION ALL
        SELECT a.alias_id, m.other_id, {{run:String}}, {_ts(at)}
        FROM (SELECT alias_id, current_id FROM {db}.entity_aliases FINAL) AS a
        INNER JOIN ({merges}) AS m ON a.current_id = m.entity_id""", {"run": run_id})
    counts: dict[str, int] = {}
    for e in events["event"].to_pylist():
        counts[e] = counts.get(e, 0) + 1
    return counts


def retired_ids(engine: Engine) -> pa.Table:
    """Every id that once named an entity and no longer does (alias_id)."""
    return engine.query_arrow(f"SELECT DISTINCT alias_id FROM {engine.database}.entity_aliases")
