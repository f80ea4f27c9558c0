"""Dagster metadata builders shared by the stage assets (tables, lineage, previews)."""

from __future__ import annotations

import json

import dagster as dg
import pyarrow as pa

from creditlake.ingest.manifest import Manifest
from creditlake.schema import RECORD_COLUMNS

MASTER_SCHEMA = dg.TableSchema(columns=[
    dg.TableColumn(c.name, c.clickhouse, description=c.description) for c in RECORD_COLUMNS])


def source_schema(m: Manifest) -> dg.TableSchema:
    cols: dict[str, str] = {}
    for mapping in m.mappings.values():
        for target, sources in mapping["targets"].items():
            for s in sources:
                cols.setdefault(s, f"-> {target}")
        for s in mapping["metadata"]:
            cols.setdefault(s, "-> metadata")
    return dg.TableSchema(columns=[dg.TableColumn(n, "text", description=d)
                                   for n, d in cols.items()])


def column_lineage(m: Manifest, upstream: dg.AssetKey) -> dg.TableColumnLineage:
    deps: dict[str, list[dg.TableColumnDep]] = {}
    for mapping in m.mappings.values():
        for target, sources in mapping["targets"].items():
            field = target.split(".")[0]
            for s in sources:
                dep = dg.TableColumnDep(asset_key=upstream, column_name=s)
                if dep not in deps.setdefault(field, []):
                    deps[field].append(dep)
        for s in mapping["metadata"]:
            dep = dg.TableColumnDep(asset_key=upstream, column_name=s)
            if dep not in deps.setdefault("metadata", []):
                deps["metadata"].append(dep)
    return dg.TableColumnLineage(deps_by_column=deps)


def preview(table: pa.Table, limit: int = 10) -> dg.MarkdownMetadataValue:
    rows = table.slice(0, limit).to_pylist()
    if not rows:
        return dg.MetadataValue.md("_no rows_")
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        cells = [str(r[c]).replace("|", "\\|").replace("\n", " ")[:60] for c in cols]
        lines.append("| " + " | ".join(cells) + " |")
    return dg.MetadataValue.md("\n".join(lines))


def counts(m: Manifest) -> dict[str, object]:
    return {
        "source_file": m.source_file, "format": m.format, "status": str(m.status),
        "rows_read": dg.MetadataValue.int(m.rows_read),
        "rejected": dg.MetadataValue.int(m.rejected),
        "held": dg.MetadataValue.int(m.held),
        "message": m.message or "",
    }


def quality(m: Manifest) -> dict[str, object]:
    hist = {f"{i / 10:.1f}-{(i + 1) / 10:.1f}": n for i, n in enumerate(m.quality_histogram)}
    return {
        "quality_mean": dg.MetadataValue.float(round(m.quality_mean, 4)),
        "quality_histogram": dg.MetadataValue.json(hist),
        "failure_rate": dg.MetadataValue.float(round(m.failure_rate, 6)),
    }


def mapping_json(m: Manifest) -> dg.JsonMetadataValue:
    return dg.MetadataValue.json(json.loads(json.dumps(m.mappings)))
