"""Which entity an id names now: stored ids keep working after merges (for /enrich and
`"resolve": "entity"`). An id that never named an entity resolves to None."""

from __future__ import annotations

from collections.abc import Iterable

from creditlake.clickhouse.base import Engine


def current_entity_ids(engine: Engine, ids: Iterable[str]) -> dict[str, str]:
    """id -> the live entity id it names now (absent: unknown id)."""
    wanted = sorted({str(i) for i in ids})
    if not wanted:
        return {}
    db = engine.database
    rows = engine.query_rows(f"""
        SELECT q, if(a.current_id != '', a.current_id, q) AS now
        FROM (SELECT arrayJoin({{ids:Array(String)}}) AS q) AS w
        LEFT JOIN (SELECT alias_id, current_id FROM {db}.entity_aliases FINAL
                   WHERE alias_id IN {{ids:Array(String)}}) AS a ON a.alias_id = w.q
        WHERE now IN (SELECT entity_id FROM {db}.golden_records FINAL
                      WHERE is_deleted = 0 AND entity_id IN (
                          SELECT current_id FROM {db}.entity_aliases FINAL
                          WHERE alias_id IN {{ids:Array(String)}}
                          UNION ALL SELECT arrayJoin({{ids:Array(String)}})))""",
                              {"ids": wanted})
    return {q: now for q, now in rows}


def current_entity_id(engine: Engine, entity_id: str) -> str | None:
    """The live entity id that `entity_id` (current or absorbed in a merge) names now."""
    return current_entity_ids(engine, [entity_id]).get(str(entity_id))


def current_ids_sql(database: str, param: str) -> str:
    """SQL (a subquery) of the live ids named by the Array(String) parameter `param`."""
    return (f"(SELECT arrayJoin({{{param}:Array(String)}}) UNION ALL"
            f" SELECT current_id FROM {database}.entity_aliases FINAL"
            f" WHERE alias_id IN {{{param}:Array(String)}})")
