"""The demo sample: one file of every supported format, with people shared across files
(cross-file duplicates), in-file duplicates and a few unusable rows (< 0.1% per file, so the
blocking failure-rate check lets every file through). Every file after the first also holds
fuzzy copies (creditlake.samples_fuzzy: ~3% of its rows) of people from the files before it:
the same person as another system exports them, which only entity resolution can merge."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from creditlake import samples, samples_fuzzy

FUZZY_SHARE = 0.03

BAD_ROWS_IN = ("crm_export.csv", "app_users.jsonl", "warehouse.parquet")


def write_demo_files(out: Path, rows: int = 300_000, seed: int = 11) -> list[Path]:
    """Split `rows` people across CSV, TSV.gz, JSON, JSONL, Parquet, XML, SQL dump, Excel and
    a ZIP bundle; returns the files written."""
    from creditlake import samples_formats as sf

    out.mkdir(parents=True, exist_ok=True)
    everyone = samples.people(rows, seed=seed, invalid_rate=0.0, duplicate_rate=0.02)
    n = everyone.height
    # big shares for the fast columnar/text formats, smaller ones for XML/SQL/Excel/ZIP
    shares = {"crm_export.csv": 0.30, "app_users.jsonl": 0.20, "warehouse.parquet": 0.20,
              "partners.json": 0.08, "legacy_contacts.tsv.gz": 0.08, "crm_contacts.xml": 0.05,
              "shop_dump.sql": 0.05, "sales_team.xlsx": 0.02, "bundle.zip": 0.02}
    styles = {"crm_export.csv": "crm", "app_users.jsonl": "app", "warehouse.parquet": "legacy",
              "partners.json": "app", "legacy_contacts.tsv.gz": "legacy",
              "crm_contacts.xml": "crm", "shop_dump.sql": "app", "sales_team.xlsx": "crm",
              "bundle.zip": "app"}
    written: list[Path] = []
    start = 0
    for name, share in shares.items():
        size = int(n * share)
        # each file also repeats 1% of the previous file's people: cross-file duplicates
        part = everyone.slice(start, size)
        if start:
            part = pl.concat([part, everyone.slice(max(0, start - size // 100), size // 100),
                              samples_fuzzy.fuzzy_copies(everyone.slice(0, start),
                                                         max(1, int(size * FUZZY_SHARE)),
                                                         seed=seed + start)])
        start += size
        if name in BAD_ROWS_IN:  # unusable rows only where 0.05% is still under the 0.1% gate
            part = samples.with_invalid_rows(part, 0.0005, seed=seed)
        df = samples.styled(part, styles[name])
        path = out / name
        if name.endswith(".tsv.gz"):
            import gzip

            path.write_bytes(gzip.compress(df.write_csv(separator="\t").encode()))
        elif name.endswith((".csv", ".jsonl", ".parquet", ".json")):
            samples.write(df, path, path.suffix.lstrip("."))
        else:
            records = df.to_dicts()
            if name.endswith(".xml"):
                sf.write_xml(records, path)
            elif name.endswith(".sql"):
                sf.write_sql_dump(records, path, table="customers")
            elif name.endswith(".xlsx"):
                sf.write_xlsx(records, path)
            else:
                sf.write_zip(records, path)
        written.append(path)
    return written
