"""Bounded memory: large generated XML and SQL dumps are read in a subprocess whose peak RSS
must stay under a fixed ceiling and must not grow with the position in the file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from creditlake.samples_formats import write_big_sql_dump, write_big_xml

pytestmark = pytest.mark.slow

CEILING_MB = 400   # whole child process: interpreter + Arrow + Polars + lxml + the reader
GROWTH_MB = 120    # RSS after the last batch minus RSS after the first batch

CHILD = r"""
import json, sys, time
from pathlib import Path
from creditlake import readers

def rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024

def hwm_mb():
    # VmHWM is this image's peak; ru_maxrss would include the forked pytest parent's pages
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024

path = Path(sys.argv[1])
fmt = readers.detect(path)
rows, samples, t = 0, [], time.perf_counter()
for batch in readers.get_reader(fmt)(path, readers.ReaderOptions()):
    rows += batch.num_rows
    samples.append(rss_mb())
print(json.dumps({"format": fmt, "rows": rows, "first_mb": samples[0], "last_mb": samples[-1],
                  "peak_mb": hwm_mb(),
                  "seconds": time.perf_counter() - t}))
"""


def run_child(path: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(path)], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(("kind", "rows", "min_mb"), [
    # sizes keep the test near 30 s on a busy 2-core box; the growth bound is what shows
    # that memory does not depend on file size (bench/readers_bench.py runs larger files)
    ("xml", 300_000, 60),             # ~64 MB
    ("mysql", 1_200_000, 120),        # ~123 MB of multi-row INSERTs
    ("postgres", 2_200_000, 200),     # ~210 MB COPY block
])
def test_reader_memory_is_bounded(tmp_path: Path, kind: str, rows: int, min_mb: int) -> None:
    if kind == "xml":
        path = write_big_xml(tmp_path / "big.xml", rows)
    else:
        path = write_big_sql_dump(tmp_path / f"big_{kind}.sql", rows, kind)
    size_mb = path.stat().st_size / 2**20
    assert size_mb >= min_mb
    r = run_child(path)
    path.unlink()
    print(f"{kind}: {size_mb:.0f} MB, {r}")
    assert r["rows"] == rows
    assert r["peak_mb"] < CEILING_MB, r
    assert r["last_mb"] - r["first_mb"] < GROWTH_MB, r
