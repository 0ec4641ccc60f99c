"""CPU accounting from /proc: per gunicorn worker, for PostgreSQL, and for the whole machine.

A round is bracketed by two snapshots; the difference shows how the load was split between
a server's workers (a worker that accepted every keep-alive connection stands out) and how
much CPU something else on the machine took while the round ran.
"""

import os
from dataclasses import dataclass, field
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[str, int, list[int]] | None:
    """(command, parent pid, [utime, stime, cutime, cstime]) in ticks, None if gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    command = text[text.index("(") + 1 : text.rindex(")")]
    rest = text[text.rindex(")") + 2 :].split()
    return command, int(rest[1]), [int(value) for value in rest[11:15]]


def alive(pid: int) -> bool:
    """Running, not gone or a zombie waiting for its parent."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return text[text.rindex(")") + 2] not in "ZX"


@dataclass
class Snapshot:
    workers: dict[int, int]  # worker pid -> utime + stime
    reaped: int  # the master's cutime + cstime: CPU of workers that exited (recycled)
    postgres: int
    busy: int  # machine-wide non-idle ticks
    total: int  # machine-wide ticks
    others: dict[int, int] = field(default_factory=dict)


def snapshot(master: int) -> Snapshot:
    workers, postgres = {}, 0
    reaped = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        found = _stat(int(entry.name))
        if found is None:
            continue
        command, parent, (utime, stime, cutime, cstime) = found
        if parent == master:
            workers[int(entry.name)] = utime + stime
        elif int(entry.name) == master:
            reaped = cutime + cstime
        elif command == "postgres":  # the postmaster's cutime holds exited backends
            postgres += utime + stime + cutime + cstime
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return Snapshot(workers, reaped, postgres, sum(fields[:8]) - idle, sum(fields[:8]))


def difference(before: Snapshot, after: Snapshot, load_cpu: float) -> dict[str, object]:
    """Seconds of CPU per worker (pids alive at the end), recycled workers, PostgreSQL, wrk
    (`load_cpu`, measured by the caller) and everything else on the machine."""
    workers = {
        str(pid): round((ticks - before.workers.get(pid, 0)) / TICK, 2)
        for pid, ticks in after.workers.items()
    }
    gone = set(before.workers) - set(after.workers)
    # The master's cutime grows by a reaped worker's whole life; count only this round's part.
    recycled = (after.reaped - before.reaped - sum(before.workers[pid] for pid in gone)) / TICK
    server = sum(workers.values()) + recycled  # type: ignore[arg-type]
    postgres = (after.postgres - before.postgres) / TICK
    busy = (after.busy - before.busy) / TICK
    return {
        "worker_cpu": workers,
        "recycled_workers": len(gone),
        "recycled_cpu": round(max(recycled, 0.0), 2),
        "postgres_cpu": round(postgres, 2),
        "wrk_cpu": round(load_cpu, 2),
        "other_cpu": round(max(busy - server - postgres - load_cpu, 0.0), 2),
        "machine_busy": round(busy / max((after.total - before.total) / TICK, 1e-9), 3),
    }
