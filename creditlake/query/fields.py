"""The whitelist of queryable fields, derived from creditlake.schema, with their SQL behaviour."""

from __future__ import annotations

from dataclasses import dataclass

from creditlake.schema import RECORD_COLUMNS

# Operators per kind. Ranges on dates and numbers; contains/prefix on text.
TEXT_OPS = frozenset({"eq", "ne", "in", "not_in", "contains", "prefix"})
RANGE = frozenset({"gt", "gte", "lt", "lte"})
JSON_COLUMN = "metadata"  # a JSON object stored as text: answered as an object
OPS_BY_KIND = {
    "text": TEXT_OPS,
    "uuid": frozenset({"eq", "ne", "in", "not_in"}),
    "date": frozenset({"eq", "ne", "in", "not_in"}) | RANGE,
    "datetime": RANGE | {"eq", "ne"},
    "number": frozenset({"eq", "ne", "in", "not_in"}) | RANGE,
    "array": frozenset({"has", "has_any"}),
}
ALL_OPS = frozenset().union(*OPS_BY_KIND.values()) | {"is_null"}


@dataclass(frozen=True)
class Field:
    name: str
    kind: str  # text | uuid | date | datetime | number | array
    nullable: bool
    param_type: str  # ClickHouse type for bound scalar values
    select_sql: str  # JSON-friendly projection (strings for ids/dates)
    sortable: bool
    key_type: str = "String"  # ClickHouse type of the raw column, for cursor key parameters

    @property
    def ops(self) -> frozenset[str]:
        return OPS_BY_KIND[self.kind] | ({"is_null"} if self.nullable else frozenset())


def _field(name: str, ch_type: str) -> Field:
    nullable = ch_type.startswith("Nullable(")
    base = ch_type.removeprefix("Nullable(").removesuffix(")") if nullable else ch_type
    if base == "UUID":
        return Field(name, "uuid", nullable, "UUID", f"toString({name})", True, "UUID")
    if base == "Date":
        return Field(name, "date", nullable, "Date", f"toString({name})", True, "Date")
    if base.startswith("DateTime64"):
        return Field(name, "datetime", nullable, "DateTime64(3, 'UTC')",
                     f"formatDateTime({name}, '%Y-%m-%dT%H:%i:%S.%fZ')", True,
                     "DateTime64(3, 'UTC')")
    if base.startswith("Float") or base.startswith("Int") or base.startswith("UInt"):
        return Field(name, "number", nullable, "Float64", name, True, base)
    if base.startswith("Array("):
        return Field(name, "array", nullable, "String", name, False)
    if base.startswith("FixedString"):
        return Field(name, "text", nullable, "String", f"toString({name})", True)
    return Field(name, "text", nullable, "String", name, True)


FIELDS: dict[str, Field] = {c.name: _field(c.name, c.clickhouse) for c in RECORD_COLUMNS
                            if c.queryable}
DEFAULT_FIELDS: tuple[str, ...] = tuple(FIELDS)
SORTABLE: tuple[str, ...] = tuple(n for n, f in FIELDS.items() if f.sortable)
