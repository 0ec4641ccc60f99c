"""Drives wrk against the project and the floor in alternating rounds.

For each endpoint: a warm-up of both servers, then `--rounds` rounds of project, floor. Every
wrk run appends one JSON line to --out (throughput, latency, errors and the CPU split from
bench.cpu); `--profile DIR` instead records one project worker and one floor worker with
py-spy while wrk runs. Started by scripts/bench, which owns the servers and databases.
"""

import argparse
import json
import resource
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.cpu import Snapshot, alive, difference, snapshot
from bench.seed import UNPUBLISHED_EVERY

# The expand endpoints run before the writes: on the seed as it is, where every post has its
# comments (create rounds add thousands of posts without any, newest first); so does
# `changes`, whose token must see exactly the 1,000 changes bench.fixtures made. Chosen
# endpoints run in this order.
ENDPOINTS = (
    "get",
    "list",
    "filter",
    "cursor",
    "expand-get",
    "expand-list",
    "expand-cursor",
    "compat-list",
    "changes",
    "create",
    "bulk-create",
    "upsert",
    "update",
)
WRK_SCRIPTS = Path(__file__).parent / "wrk"
RESULT_PREFIX = "BENCH_RESULT "
BULK_ITEMS = 1000  # posts per bulk-create request: its req/s times this is rows/s
UPSERT_ITEMS = 100  # tags per upsert request


@dataclass(frozen=True)
class Target:
    name: str
    url: str
    master: int  # the gunicorn master's pid
    more: tuple[int, ...] = ()  # other gunicorn masters whose workers are accounted too
    trees: tuple[tuple[str, tuple[int, ...]], ...] = ()  # e.g. ("nginx", (master pids))

    def snapshot(self) -> Snapshot:
        return snapshot(self.master, *self.more, trees=dict(self.trees))

    def alive(self) -> bool:
        pids = [self.master, *self.more, *(pid for _, pids in self.trees for pid in pids)]
        return all(alive(pid) for pid in pids)


def first_cursor(target: Target) -> str:
    """The next_cursor of the first page: where the cursor walk starts."""
    with urllib.request.urlopen(f"{target.url}/api/v1/posts?limit=20", timeout=60) as response:
        return str(json.load(response)["next_cursor"])


# The expand endpoints are the get, list and cursor scripts with a query appended.
EXPANSIONS = {
    "expand-get": ("get", "expand=comments"),
    "expand-list": ("list", "expand=owner,comments.author"),
    "expand-cursor": ("cursor", "expand=owner,comments.author"),
}


def script_of(endpoint: str) -> tuple[str, list[str]]:
    """The wrk script an endpoint runs, and the query it appends (none for most)."""
    script, query = EXPANSIONS.get(endpoint, (endpoint, ""))
    return script, [query] if query else []


def script_args(target: Target, endpoint: str, args: argparse.Namespace) -> list[str]:
    script, extra = script_of(endpoint)
    if script == "cursor":
        return [first_cursor(target), *extra]
    if script == "changes":  # the sync token bench.compare --changes wrote
        return [(args.fixtures / "changes.txt").read_text().strip()]
    return [
        *{
            "get": [str(args.posts), str(UNPUBLISHED_EVERY)],
            "list": [str(args.max_offset)],
            "compat-list": [str(args.max_offset)],
            "create": [str(args.fixtures / "tokens.txt")],
            "bulk-create": [str(args.fixtures / "tokens.txt"), str(BULK_ITEMS)],
            "upsert": [str(args.fixtures / "tokens.txt"), str(UPSERT_ITEMS)],
            "update": [str(args.fixtures / "owned.txt")],
        }.get(script, []),
        *extra,
    ]


def wrk_command(
    target: Target, endpoint: str, seconds: float, args: argparse.Namespace
) -> list[str]:
    return [
        "wrk",
        "-t1",
        f"-c{args.connections}",
        f"-d{seconds:g}s",
        "--timeout",
        "30s",  # exact totals on 1,000,000 rows take seconds
        "-s",
        str(WRK_SCRIPTS / f"{script_of(endpoint)[0]}.lua"),
        target.url,
        "--",
        *script_args(target, endpoint, args),
    ]


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(target: Target, endpoint: str, seconds: float, args: argparse.Namespace) -> dict[str, Any]:
    """One wrk run: its result line plus the CPU accounting of the round."""
    command = wrk_command(target, endpoint, seconds, args)
    before, load_before = target.snapshot(), children_cpu()
    completed = subprocess.run(
        command,
        capture_output=True,
        text=True,
        check=False,
        cwd=WRK_SCRIPTS.parent.parent,  # the scripts dofile("bench/wrk/common.lua")
    )
    load_cpu, after = children_cpu() - load_before, target.snapshot()
    if not target.alive():
        raise SystemExit(f"the {target.name} server stopped during {endpoint}; see its log")
    lines = [line for line in completed.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if completed.returncode != 0 or not lines:
        raise SystemExit(f"wrk failed on {target.name} {endpoint}:\n{completed.stderr}")
    return json.loads(lines[0].removeprefix(RESULT_PREFIX)) | difference(before, after, load_cpu)


def describe(result: dict[str, Any]) -> str:
    cpu = result["worker_cpu"]
    split = "/".join(f"{seconds:.1f}" for seconds in cpu.values())
    recycled = f" +{result['recycled_workers']} recycled" if result["recycled_workers"] else ""
    trees = "".join(f"  {name} {cpu:.1f} s" for name, cpu in result.get("tree_cpu", {}).items())
    return (
        f"{result['rps']:8.0f} req/s  p50 {result['p50_us'] / 1000:6.1f} ms"
        f"  p99 {result['p99_us'] / 1000:6.1f} ms  non-2xx {result['non2xx']:<4}"
        f" errors {result['socket_errors']:<3} worker CPU {split} s{recycled}"
        f"{trees}  PostgreSQL {result['postgres_cpu']:.1f} s  other {result['other_cpu']:.1f} s"
    )


def measure(targets: list[Target], args: argparse.Namespace) -> None:
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("a") as out:
        for endpoint in args.endpoints:
            serving = [
                target
                for target in targets
                if not (endpoint == "cursor" and target.name == "project" and args.no_cursor)
            ]
            if len(serving) < len(targets):
                print(f"[{args.label}] {endpoint}: the project has no cursor pages: n/a")
                out.write(json.dumps({"label": args.label, "endpoint": endpoint, "na": "project"}))
                out.write("\n")
            for target in serving:
                run(target, endpoint, args.warmup, args)
            for round_number in range(1, args.rounds + 1):
                for target in serving:
                    result = run(target, endpoint, args.duration, args)
                    record = {
                        "label": args.label,
                        "posts": args.posts,
                        "endpoint": endpoint,
                        "target": target.name,
                        "round": round_number,
                        "duration": args.duration,
                        "connections": args.connections,
                    } | result
                    out.write(json.dumps(record) + "\n")
                    out.flush()
                    print(
                        f"[{args.label}] {endpoint:<6} round {round_number} {target.name:<7}"
                        f" {describe(result)}",
                        flush=True,
                    )


def profile(targets: list[Target], args: argparse.Namespace) -> None:
    """py-spy on one worker of each server while wrk loads both workers."""
    args.profile.mkdir(parents=True, exist_ok=True)
    for endpoint in args.endpoints:
        for target in targets:
            run(target, endpoint, args.warmup, args)
            worker = min(snapshot(target.master).workers)
            load = subprocess.Popen(
                wrk_command(target, endpoint, args.duration + 3, args),
                stdout=subprocess.DEVNULL,
                cwd=WRK_SCRIPTS.parent.parent,
            )
            time.sleep(1.5)
            output = args.profile / f"{target.name}-{endpoint}.raw.txt"
            subprocess.run(
                [
                    str(Path(sys.executable).parent / "py-spy"),
                    "record",
                    "--pid",
                    str(worker),
                    "--duration",
                    str(int(args.duration)),
                    "--rate",
                    "200",
                    "--format",
                    "raw",
                    "--full-filenames",
                    "--output",
                    str(output),
                ],
                check=True,
                capture_output=True,
            )
            load.wait()
            print(f"[{args.label}] profiled {target.name} {endpoint}: {output}", flush=True)


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """The options of a wrk run shared by every bench entry point."""
    parser.add_argument("--posts", type=int, required=True, help="the highest seeded post id")
    parser.add_argument("--max-offset", type=int, default=9000)
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--fixtures", type=Path, required=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--project", required=True, help="URL,MASTER_PID")
    parser.add_argument("--floor", required=True, help="URL,MASTER_PID")
    parser.add_argument("--endpoints", default=",".join(ENDPOINTS))
    parser.add_argument("--label", default="10k")
    add_run_options(parser)
    parser.add_argument(
        "--no-cursor", action="store_true", help="the project has no cursor pages (n/a)"
    )
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--profile", type=Path, help="record py-spy profiles here instead")
    args = parser.parse_args()
    args.endpoints = [name for name in args.endpoints.split(",") if name]
    unknown = set(args.endpoints) - set(ENDPOINTS)
    if unknown:
        parser.error(f"unknown endpoints {sorted(unknown)}; known: {', '.join(ENDPOINTS)}")
    args.endpoints.sort(key=ENDPOINTS.index)  # reads of the seed as it is before the writes
    targets = []
    for name in ("project", "floor"):
        url, master = getattr(args, name).rsplit(",", 1)
        targets.append(Target(name, url, int(master)))
    if args.profile:
        profile(targets, args)
    else:
        measure(targets, args)


if __name__ == "__main__":
    main()
