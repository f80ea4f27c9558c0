"""Reader throughput per format (rows/s), reader only: no mapping, validation or load.

    uv run python bench/readers_bench.py [--rows 500000] [--formats xml,sql-mysql,...] [--json]

Generates each input in a temp dir, then times `readers.get_reader(detect(path))` over it in a
fresh subprocess (so one format's memory does not inflate the next one's peak RSS). Reports
wall-clock and CPU rows/s (CPU figures are steadier on a shared machine) and peak RSS.
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from creditlake.samples_formats import write_big_sql_dump, write_big_xml  # noqa: E402

FORMATS = ("xml", "xml-gz", "sql-mysql", "sql-pg-copy", "xlsx", "zip-xml")

CHILD = r"""
import json, resource, sys, time
import pyarrow as pa
pa.array(["warm-up"], pa.string())  # one-time Arrow initialisation is not reader work
from pathlib import Path
from creditlake import readers
path = Path(sys.argv[1])
fmt = readers.detect(path)
w, c, rows = time.perf_counter(), time.process_time(), 0
for b in readers.get_reader(fmt)(path, readers.ReaderOptions()):
    rows += b.num_rows
print(json.dumps({"detected": fmt, "rows": rows, "wall_s": time.perf_counter() - w,
                  "cpu_s": time.process_time() - c,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def write_big_xlsx(path: Path, n: int) -> Path:
    import xlsxwriter

    wb = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    ws = wb.add_worksheet("People")
    ws.write_row(0, 0, ["id", "email", "full_name", "phone", "city"])
    for i in range(n):
        ws.write_row(i + 1, 0, [i, f"user{i}@example.com", f"Person {i}", f"+49 30 {i:08d}",
                                "Berlin"])
    wb.close()
    return path


def make_input(fmt: str, rows: int, d: Path) -> Path:
    if fmt == "xml":
        return write_big_xml(d / "people.xml", rows)
    if fmt == "xml-gz":
        src = write_big_xml(d / "people_src.xml", rows)
        out = d / "people.xml.gz"
        with open(src, "rb") as f, gzip.open(out, "wb", compresslevel=1) as g:
            shutil.copyfileobj(f, g)
        src.unlink()
        return out
    if fmt == "sql-mysql":
        return write_big_sql_dump(d / "people_my.sql", rows, "mysql")
    if fmt == "sql-pg-copy":
        return write_big_sql_dump(d / "people_pg.sql", rows, "postgres")
    if fmt == "xlsx":
        return write_big_xlsx(d / "people.xlsx", min(rows, 1_000_000))
    if fmt == "zip-xml":
        src = write_big_xml(d / "people_zip.xml", rows)
        out = d / "people.zip"
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
            zf.write(src, "export/people.xml")
        src.unlink()
        return out
    raise SystemExit(f"unknown format {fmt}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=500_000)
    ap.add_argument("--formats", default=",".join(FORMATS))
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="readers-bench-") as td:
        for fmt in args.formats.split(","):
            t = time.perf_counter()
            path = make_input(fmt, args.rows, Path(td))
            gen_s = time.perf_counter() - t
            out = subprocess.run([sys.executable, "-c", CHILD, str(path)], capture_output=True,
                                 text=True, check=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            r.update(format=fmt, file_mb=round(path.stat().st_size / 2**20, 1),
                     generate_s=round(gen_s, 1),
                     rows_per_s=round(r["rows"] / r["wall_s"]),
                     rows_per_cpu_s=round(r["rows"] / max(r["cpu_s"], 1e-9)))
            path.unlink()
            results.append(r)
            if not args.json:
                print(f"{fmt:12s} {r['rows']:>9,} rows {r['file_mb']:>7.1f} MB  "
                      f"{r['rows_per_s']:>9,} rows/s wall  {r['rows_per_cpu_s']:>9,} rows/cpu-s"
                      f"  peak RSS {r['peak_rss_mb']:.0f} MB", flush=True)
    if args.json:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
