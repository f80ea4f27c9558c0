"""The partition sets. Every landed file version ("<name>@<content hash prefix>") is a
partition of `landing_files` (normalize, dedup and their checks: every file) and of its own
format's set, `<format>_files` (the landing/<format> asset: only files of that format, so
each landing asset's partition bar shows its own files and nothing that reads as a backlog).
Both are filled by the landing sensors and `creditlake ingest`, in the same order."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache

import dagster as dg

landing_files = dg.DynamicPartitionsDefinition(name="landing_files")


@cache
def format_files(fmt: str) -> dg.DynamicPartitionsDefinition:
    return dg.DynamicPartitionsDefinition(name=f"{fmt}_files")


def _by_set(items: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """(key, format) pairs -> partition set name -> keys, registration order kept."""
    out: dict[str, list[str]] = {landing_files.name or "": []}
    for key, fmt in items:
        out[landing_files.name or ""].append(key)
        out.setdefault(format_files(fmt).name or "", []).append(key)
    return out


def add_requests(items: Iterable[tuple[str, str]]) -> list[dg.AddDynamicPartitionsRequest]:
    """What a sensor returns to register new files (nothing when there are none)."""
    return [dg.AddDynamicPartitionsRequest(name, keys)
            for name, keys in _by_set(items).items() if keys]


def add_partitions(instance: dg.DagsterInstance, items: Iterable[tuple[str, str]]) -> None:
    """Register files in both sets (the CLI; keys already present stay where they are)."""
    for name, keys in _by_set(items).items():
        known = set(instance.get_dynamic_partitions(name))
        if new := [k for k in keys if k not in known]:
            instance.add_dynamic_partitions(name, new)
