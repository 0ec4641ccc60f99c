"""One instance against two, both behind the project's nginx.conf (`scripts/bench --instances`).

scripts/bench starts two gunicorn instances of the project (2 workers each) and two nginx
servers from the shipped config: `single` with instance 1 alone in `upstream app`, `double`
with both. This runs bench.rounds' wrk rounds alternating single and double, accounts the CPU
of both instances' workers, both nginx servers, PostgreSQL and wrk around every run, and
prints the medians: req/s, the ratio double / single and where the machine's CPU went. On a
machine with few cores the ratio measures how the same CPUs are shared, not how the project
scales out: the tables say so, and show the CPU that explains it.
"""

import argparse
import json
import os
import statistics
from pathlib import Path
from typing import Any

from bench.report import markdown_table, text_table
from bench.rounds import ENDPOINTS, Target, add_run_options, measure

SETUPS = ("single", "double")
CPU_PARTS = ("instance 1", "instance 2", "nginx", "PostgreSQL", "wrk", "other")


def cpu_parts(result: dict[str, Any]) -> list[float]:
    """Seconds of CPU in one run, in the order of CPU_PARTS."""
    first, second = result["server_cpu"]
    return [
        first,
        second,
        result["tree_cpu"]["nginx"],
        result["postgres_cpu"],
        result["wrk_cpu"],
        result["other_cpu"],
    ]


def summarise(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per endpoint and set-up, medians over the rounds; per endpoint, the ratio."""
    rows = []
    for endpoint in ENDPOINTS:
        runs = {
            setup: [r for r in records if r["endpoint"] == endpoint and r["target"] == setup]
            for setup in SETUPS
        }
        if not all(runs.values()):
            continue
        row: dict[str, Any] = {"endpoint": endpoint}
        for setup, results in runs.items():
            parts = [cpu_parts(result) for result in results]
            app = [sum(part[:2]) for part in parts]
            row[setup] = {
                "rps": statistics.median(r["rps"] for r in results),
                "rounds": [r["rps"] for r in results],
                "p50": statistics.median(r["p50_us"] for r in results) / 1000,
                "p99": statistics.median(r["p99_us"] for r in results) / 1000,
                "failed": sum(r["non2xx"] + r["socket_errors"] for r in results),
                "cpu": [statistics.median(column) for column in zip(*parts, strict=True)],
                "app_us": statistics.median(
                    1e6 * seconds / max(r["requests"], 1)
                    for seconds, r in zip(app, results, strict=True)
                ),
                "busy": statistics.median(r["machine_busy"] for r in results),
                "duration": results[0]["duration"],
            }
        row["ratio"] = row["double"]["rps"] / row["single"]["rps"]
        row["round_ratios"] = [
            d / s for s, d in zip(row["single"]["rounds"], row["double"]["rounds"], strict=False)
        ]
        rows.append(row)
    return rows


THROUGHPUT_HEADERS = [
    "endpoint",
    "1 instance req/s",
    "2 instances req/s",
    "2 / 1",
    "2 / 1 per round",
    "p50 / p99 ms, 1 instance",
    "p50 / p99 ms, 2 instances",
    "app CPU µs/req, 1 / 2",
    "non-2xx+errors, 1 / 2",
]
CPU_HEADERS = [
    "endpoint",
    "set-up",
    *(f"{part} CPU s" for part in CPU_PARTS),
    "machine busy",
]


def throughput_cells(row: dict[str, Any]) -> list[str]:
    single, double = row["single"], row["double"]
    return [
        row["endpoint"],
        f"{single['rps']:,.0f}",
        f"{double['rps']:,.0f}",
        f"{row['ratio']:.2f}",
        " ".join(f"{ratio:.2f}" for ratio in row["round_ratios"]),
        f"{single['p50']:.1f} / {single['p99']:.1f}",
        f"{double['p50']:.1f} / {double['p99']:.1f}",
        f"{single['app_us']:,.0f} / {double['app_us']:,.0f}",
        f"{single['failed']} / {double['failed']}",
    ]


def cpu_rows(row: dict[str, Any]) -> list[list[str]]:
    names = {"single": "1 instance", "double": "2 instances"}
    return [
        [
            row["endpoint"],
            names[setup],
            *(f"{seconds:.1f}" for seconds in row[setup]["cpu"]),
            f"{100 * row[setup]['busy']:.0f} %",
        ]
        for setup in SETUPS
    ]


def notes(summary: list[dict[str, Any]]) -> str:
    cpus = os.cpu_count() or 1
    duration = summary[0]["single"]["duration"] if summary else 0
    return (
        f"CPU-BOUND: this machine has {cpus} CPUs, shared by wrk, nginx, both instances and"
        f" PostgreSQL, so a {duration:g}-second run has at most {cpus * duration:g} CPU"
        " seconds to give. A second instance adds workers, not CPUs: the ratio 2 / 1 shows how"
        " the same cores are shared, not how the project scales out (each instance on its own"
        " machine). Medians over the rounds (1 instance, then 2, alternating); CPU seconds per"
        " run: each instance's gunicorn workers, both nginx servers (the idle one costs"
        " nothing), PostgreSQL, wrk and everything else; machine busy: the share of all CPUs"
        " in use. app CPU µs/req: both instances' workers' CPU per request served."
    )


def render(summary: list[dict[str, Any]], markdown: bool, meta: list[str]) -> str:
    table = markdown_table if markdown else text_table
    parts = ["\n".join(f"- {line}" for line in meta if line)] if markdown and meta else []
    parts += [
        table(THROUGHPUT_HEADERS, [throughput_cells(row) for row in summary]),
        table(CPU_HEADERS, [line for row in summary for line in cpu_rows(row)]),
        notes(summary),
    ]
    return "\n\n".join(parts) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--single", required=True, help="nginx with instance 1 alone: URL")
    parser.add_argument("--double", required=True, help="nginx with both instances: URL")
    parser.add_argument("--masters", required=True, help="the instances' gunicorn masters: P,P")
    parser.add_argument("--nginx", required=True, help="both nginx masters' pids: P,P")
    parser.add_argument("--endpoints", default="get,list,create")
    add_run_options(parser)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--meta", type=Path, help="`key: value` lines to list above the tables")
    parser.add_argument("--markdown", type=Path, help="also write the tables as Markdown")
    args = parser.parse_args()
    args.endpoints = [name for name in args.endpoints.split(",") if name]
    unknown = set(args.endpoints) - (set(ENDPOINTS) - {"changes"})
    if unknown:
        parser.error(f"endpoints {sorted(unknown)} not measured here (changes needs its fixture)")
    args.endpoints.sort(key=ENDPOINTS.index)
    args.label, args.no_cursor = "instances", False
    first, second = (int(pid) for pid in args.masters.split(","))
    nginx = tuple(int(pid) for pid in args.nginx.split(","))
    targets = [
        Target(name, url, first, (second,), (("nginx", nginx),))
        for name, url in (("single", args.single), ("double", args.double))
    ]
    measure(targets, args)
    records = [json.loads(line) for line in args.out.read_text().splitlines() if line]
    summary = summarise([r for r in records if r.get("label") == "instances"])
    meta = args.meta.read_text().splitlines() if args.meta else []
    print()
    print(render(summary, markdown=False, meta=meta))
    if args.markdown:
        args.markdown.write_text(render(summary, markdown=True, meta=meta))
        print(f"Markdown written to {args.markdown}")


if __name__ == "__main__":
    main()
