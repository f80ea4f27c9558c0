"""Recovery after a kill: a run whose process is gone gives back what it held.

Killed with SIGKILL, a Dagster run stays STARTED in the instance and keeps its
`clickhouse_load` concurrency slot (limit 1), so every later load on that home waited for it
forever. So every run is tagged with the process running it (pid + the kernel's start time,
so a recycled pid is not taken for it): `creditlake ingest` tags its in-process runs when it
starts them, and the ingest and entity assets tag any other run (daemon, UI) at their first
step (`tag_run_process`). `reap_dead_runs` marks the runs whose process is gone as failed and
frees their slots; the CLI calls it before running, the landing sensor on every tick. The
chDB owner lock is an flock (the kernel drops it with the process) and a re-run rebuilds a
partition's staging data from the file, so nothing else outlives the process.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

PROCESS_TAG = "creditlake/process"  # "<host>:<pid>:<start time>"


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), None if there is none;
    "Z" (a zombie: dead, not yet reaped) counts as gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "
    return None if fields[0] in ("Z", "X") else fields[19]


def process_tags() -> dict[str, str]:
    pid = os.getpid()
    return {PROCESS_TAG: f"{socket.gethostname()}:{pid}:{_start_time(pid) or ''}"}


def tag_run_process(instance, run_id: str) -> None:  # noqa: ANN001 - a DagsterInstance
    """Tag a run with the process running its steps (the CLI tags its runs up front; a tag
    copied from another run, e.g. the land run an ingest run follows, is replaced)."""
    run = instance.get_run_by_id(run_id)
    mine = process_tags()
    if run is not None and run.tags.get(PROCESS_TAG) != mine[PROCESS_TAG]:
        instance.add_run_tags(run_id, mine)


def process_alive(tag: str) -> bool:
    """Whether the process a PROCESS_TAG names still runs (True when it can't be told: a run
    of another host is never reaped from here)."""
    host, _, rest = tag.partition(":")
    pid_text, _, started = rest.partition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return True
    now = _start_time(int(pid_text))
    if now is None:
        if Path("/proc/self/stat").exists():
            return False
        try:  # no /proc: signal 0 says whether the pid exists
            os.kill(int(pid_text), 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return not started or now == started


def reap_dead_runs(instance) -> list[str]:  # noqa: ANN001 - a DagsterInstance
    """Mark runs whose process died as failed and free their concurrency slots."""
    import dagster as dg

    live = [dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING,
            dg.DagsterRunStatus.CANCELING]
    reaped = []
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=live)):
        tag = run.tags.get(PROCESS_TAG)
        if tag is None or process_alive(tag):
            continue
        pid = tag.split(":")[1]
        instance.report_run_failed(
            run, f"the process running it (pid {pid}) is gone (killed?): marked failed so its "
                 "concurrency slot is free again")
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        reaped.append(run.run_id)
    return reaped
