"""An entity run that died part-way (kill -9, OOM killer, power loss) is repaired by the next.

A run writes several tables one after the other (entity_features, entity_history and
entity_aliases, entities, golden_records, entity_runs), so a run killed between two of them
leaves, e.g., records assigned to entities without golden rows, or features that the next
incremental run would take for resolved records. Before its first write a run leaves a marker
`$CREDITLAKE_HOME/entity/run_in_progress.json` (next to the model it resolves with) naming its
run id; the marker goes when the run finished (entity_runs written). A run that finds a marker
repairs first: it deletes the dead run's history and staging rows and re-links everything
(mode full: entities, golden_records and entity_features are rewritten from `records`; stable
ids keep the entity ids). An exception inside a run leaves the marker as well: its writes may be
half done too.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from creditlake.clickhouse.base import Engine


def marker_path(home: Path) -> Path:
    return home / "entity" / "run_in_progress.json"


def unfinished_run(home: Path) -> str | None:
    """The run id of an entity run that started writing and never finished, if any."""
    path = marker_path(home)
    try:
        return str(json.loads(path.read_text())["run_id"])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):
        return "unknown"  # unreadable marker: still a run that did not finish


@contextmanager
def in_progress(home: Path, run_id: str) -> Iterator[None]:
    """Mark `run_id` as writing; the mark is removed only when the body returns."""
    path = marker_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"run_id": run_id, "pid": os.getpid()}))
    tmp.replace(path)
    yield
    path.unlink(missing_ok=True)


def repair(engine: Engine, run_id: str) -> None:
    """Drop what the dead run appended (its history and staging rows); the full re-link that
    follows rewrites entities, golden_records and entity_features."""
    db = engine.database
    sync = {"mutations_sync": 1}
    engine.command(f"ALTER TABLE {db}.entity_history DELETE WHERE run_id = {{r:String}}",
                   {"r": run_id}, settings=sync)
    engine.command(f"ALTER TABLE {db}.entity_stage DELETE WHERE startsWith(run_id, {{r:String}})",
                   {"r": run_id}, settings=sync)
