"""The reject policy: when a file's rejected rows fail the failure-rate check, and whether the
file's valid rows then load anyway (the default) or are held in staging (`on_reject: block`).

Like DuckDB's store_rejects, Spark's PERMISSIVE mode, Airbyte and dlt, the default loads the
good rows and keeps the bad ones visible in rejected_records; the check still fails loudly
(ERROR in Dagster, a non-zero exit of `creditlake ingest`). Blocking is opted into per source
(mappings.yaml) or for a run (`--block-on-rejects`, CREDITLAKE_BLOCK_ON_REJECTS).
"""

from __future__ import annotations

from dataclasses import dataclass

from creditlake.config import DEFAULT_MAX_FAILURE_RATE, DEFAULT_MIN_REJECTS
from creditlake.ingest.manifest import Manifest
from creditlake.ingest.overrides import SourceRule


@dataclass(frozen=True)
class RejectPolicy:
    max_failure_rate: float = DEFAULT_MAX_FAILURE_RATE
    min_rejects: int = DEFAULT_MIN_REJECTS  # one bad row in a small file is no failure
    block: bool = False  # hold every file that exceeds, whatever its source rule says

    def exceeded(self, m: Manifest) -> bool:
        """The failure-rate check fails: rejects above the rate *and* at least min_rejects."""
        return m.rejected >= self.min_rejects and m.failure_rate > self.max_failure_rate

    def holds(self, m: Manifest, rule: SourceRule) -> bool:
        """The file's valid rows stay in staging instead of loading."""
        return (self.block or rule.on_reject == "block") and self.exceeded(m)

    def message(self, m: Manifest, held: bool) -> str:
        what = ("valid rows held in staging (`creditlake release` loads them)" if held
                else "valid rows loaded; rejects in rejected_records (`creditlake replay` "
                     "re-processes them after a mapping fix)")
        return (f"failure rate {m.failure_rate:.3%} ({m.rejected:,} rejected) is above "
                f"{self.max_failure_rate:.3%}: {what}")
