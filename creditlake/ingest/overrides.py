"""Per-source mapping overrides, from YAML ($CREDITLAKE_HOME/mappings.yaml by default).

    sources:
      - match: "crm/*.csv"            # glob on the source's name
        columns: {"Kontakt": email, "Notes": metadata}
        date_format: "%d.%m.%Y"
        default_country: DE
        record_element: person        # XML
        sheet: Contacts               # Excel
        table: customers              # SQL dumps
        delimiter: ";"
        encoding: cp1252
        on_reject: block              # hold the whole file when its rejects exceed the limit
                                      # (default: load, see ingest/policy.py)
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from creditlake.readers.base import DEFAULT_BATCH_ROWS, ReaderOptions


@dataclass(frozen=True)
class SourceRule:
    match: str = "*"
    columns: dict[str, str] = field(default_factory=dict)
    date_format: str | None = None
    default_country: str | None = None
    record_element: str | None = None
    sheet: str | None = None
    table: str | None = None
    delimiter: str | None = None
    encoding: str | None = None
    on_reject: str = "load"  # "load" | "block" (creditlake.ingest.policy)

    def __post_init__(self) -> None:
        if self.on_reject not in ("load", "block"):
            raise ValueError(f"on_reject must be 'load' or 'block', got {self.on_reject!r}")

    def reader_options(self, batch_rows: int | None = None) -> ReaderOptions:
        return ReaderOptions(batch_rows=batch_rows or DEFAULT_BATCH_ROWS, encoding=self.encoding,
                             delimiter=self.delimiter, record_element=self.record_element,
                             sheet=self.sheet, table=self.table)


@dataclass(frozen=True)
class SourceOverrides:
    rules: tuple[SourceRule, ...] = ()

    def for_source(self, name: str) -> SourceRule:
        """First rule whose glob matches the source name (or its base name)."""
        for rule in self.rules:
            if fnmatch.fnmatch(name, rule.match) or fnmatch.fnmatch(Path(name).name, rule.match):
                return rule
        return SourceRule()

    @classmethod
    def from_yaml(cls, path: Path) -> SourceOverrides:
        if not path.exists():
            return cls()
        doc = yaml.safe_load(path.read_text()) or {}
        known = set(SourceRule.__dataclass_fields__)
        rules = []
        for i, raw in enumerate(doc.get("sources", [])):
            unknown = set(raw) - known
            if unknown:
                raise ValueError(f"{path}: sources[{i}] has unknown keys {sorted(unknown)}")
            rules.append(SourceRule(**raw))
        return cls(tuple(rules))
