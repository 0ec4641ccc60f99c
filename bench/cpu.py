"""CPU accounting from /proc: per gunicorn worker, for PostgreSQL, and for the whole machine.

A round is bracketed by two snapshots; the difference shows how the load was split between
a server's workers (a worker that accepted every keep-alive connection stands out) and how
much CPU something else on the machine took while the round ran. Several gunicorn masters
(`--instances`: two instances behind nginx) and named process trees (nginx's master and
workers) are accounted the same way.
"""

import os
from collections.abc import Collection, Mapping
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
    masters: tuple[int, ...] = ()
    master_of: dict[int, int] = field(default_factory=dict)  # worker pid -> its master
    trees: dict[str, int] = field(default_factory=dict)  # name -> roots' and children's ticks


def snapshot(
    master: int, *more: int, trees: Mapping[str, Collection[int]] | None = None
) -> Snapshot:
    """Workers of `master` (and of `more` masters); `trees`: name -> root pids, each root's
    own CPU plus its children's (nginx: the master and its workers)."""
    masters = (master, *more)
    roots = {root: name for name, pids in (trees or {}).items() for root in pids}
    workers, master_of, postgres = {}, {}, 0
    reaped = 0
    tree_ticks = dict.fromkeys(trees or {}, 0)
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        found = _stat(int(entry.name))
        if found is None:
            continue
        command, parent, (utime, stime, cutime, cstime) = found
        pid = int(entry.name)
        if pid in roots or parent in roots:
            tree_ticks[roots.get(pid) or roots[parent]] += utime + stime
        elif parent in masters:
            workers[pid] = utime + stime
            master_of[pid] = parent
        elif pid in masters:
            reaped += cutime + cstime
        elif command == "postgres":  # the postmaster's cutime holds exited backends
            postgres += utime + stime + cutime + cstime
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    busy, total = sum(fields[:8]) - idle, sum(fields[:8])
    return Snapshot(workers, reaped, postgres, busy, total, {}, masters, master_of, tree_ticks)


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
    server = sum(workers.values()) + recycled
    postgres = (after.postgres - before.postgres) / TICK
    busy = (after.busy - before.busy) / TICK
    trees = {
        name: round((ticks - before.trees.get(name, 0)) / TICK, 2)
        for name, ticks in after.trees.items()
    }
    result: dict[str, object] = {
        "worker_cpu": workers,
        "recycled_workers": len(gone),
        "recycled_cpu": round(max(recycled, 0.0), 2),
        "postgres_cpu": round(postgres, 2),
        "wrk_cpu": round(load_cpu, 2),
        "other_cpu": round(max(busy - server - postgres - load_cpu - sum(trees.values()), 0.0), 2),
        "machine_busy": round(busy / max((after.total - before.total) / TICK, 1e-9), 3),
    }
    if len(after.masters) > 1:  # each master's workers, in the order the masters were given
        result["server_cpu"] = [
            round(
                sum(
                    ticks - before.workers.get(pid, 0)
                    for pid, ticks in after.workers.items()
                    if after.master_of[pid] == master
                )
                / TICK,
                2,
            )
            for master in after.masters
        ]
    if trees:
        result["tree_cpu"] = trees
    return result
