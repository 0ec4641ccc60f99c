"""Summarises bench.rounds results: medians, ratios project / floor, latency, errors and the
per-worker CPU split, as a text table and optionally as Markdown.

    python -m bench.report results.jsonl [--meta meta.json] [--markdown FILE]
"""

import argparse
import json
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

from bench.rounds import ENDPOINTS

# Issue 6: ratio project / floor per endpoint; update may be lower (it does more). Issue 14's
# expansions: 0.60. Issue 17's changes (1,000 changed rows since a token): 0.50.
RATIO_TARGETS = {
    "update": 0.40,
    "expand-get": 0.60,
    "expand-list": 0.60,
    "expand-cursor": 0.60,
    "changes": 0.50,
}
DEFAULT_RATIO_TARGET = 0.50
P99_FACTOR = 3.0
PINNED_SHARE = 0.2  # a worker under 20 % of its server's CPU in a round: connections pinned


def split(result: dict[str, Any]) -> tuple[str, bool]:
    """The two busiest workers' CPU shares, e.g. "52/48", and whether a worker idled."""
    seconds = sorted(result["worker_cpu"].values(), reverse=True)[:2]
    total = sum(seconds) or 1.0
    shares = [round(100 * value / total) for value in seconds]
    pinned = len(seconds) < 2 or (min(seconds) / total < PINNED_SHARE)
    marks = "*" if result["recycled_workers"] else ""
    return "/".join(str(share) for share in shares) + marks, pinned and not marks


def cpu_per_request(result: dict[str, Any]) -> float:
    """Microseconds of the server's worker CPU per request served."""
    seconds = sum(result["worker_cpu"].values()) + result["recycled_cpu"]
    return 1e6 * seconds / max(result["requests"], 1)


def median(results: list[dict[str, Any]], key: str) -> float:
    return statistics.median(result[key] for result in results)


def summarise(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    runs: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    missing: set[tuple[str, str]] = set()
    labels: dict[str, int] = {}
    for record in records:
        if "na" in record:
            missing.add((record["label"], record["endpoint"]))
            continue
        labels.setdefault(record["label"], record["posts"])
        runs[record["label"], record["endpoint"], record["target"]].append(record)
    rows = []
    for label, posts in labels.items():
        for endpoint in ENDPOINTS:
            floor = runs.get((label, endpoint, "floor"))
            if not floor:
                continue
            project = runs.get((label, endpoint, "project"))
            row: dict[str, Any] = {"label": label, "posts": posts, "endpoint": endpoint}
            for name, results in (("project", project), ("floor", floor)):
                if not results:
                    row[name] = None
                    continue
                splits = [split(result) for result in results]
                row[name] = {
                    "rps": median(results, "rps"),
                    "p50": median(results, "p50_us") / 1000,
                    "p99": median(results, "p99_us") / 1000,
                    "non2xx": sum(r["non2xx"] for r in results),
                    "errors": sum(r["socket_errors"] for r in results),
                    "rounds": [r["rps"] for r in results],
                    "splits": [text for text, _ in splits],
                    "pinned": sum(pinned for _, pinned in splits),
                    "other_cpu": [r["other_cpu"] for r in results],
                    "recycled": sum(r["recycled_workers"] for r in results),
                    "cpu_us": statistics.median(cpu_per_request(r) for r in results),
                }
            if project:
                row["ratio"] = row["project"]["rps"] / row["floor"]["rps"]
                row["p99_ratio"] = row["project"]["p99"] / max(row["floor"]["p99"], 1e-9)
            else:
                row["ratio"] = row["p99_ratio"] = None
            row["missing"] = (label, endpoint) in missing
            rows.append(row)
    return rows


def cells(row: dict[str, Any]) -> list[str]:
    project, floor = row["project"], row["floor"]
    target = RATIO_TARGETS.get(row["endpoint"], DEFAULT_RATIO_TARGET)

    def side(value: dict[str, Any] | None, key: str, fmt: str) -> str:
        return "n/a" if value is None else format(value[key], fmt)

    if row["ratio"] is None:
        ratio = "n/a"
    else:
        ratio = f"{row['ratio']:.2f} {'ok' if row['ratio'] >= target else 'below'} {target:.2f}"
    return [
        f"{row['posts']:,}",
        row["endpoint"],
        side(project, "rps", ",.0f"),
        side(floor, "rps", ",.0f"),
        ratio,
        "n/a" if project is None else f"{project['p50']:.1f} / {project['p99']:.1f}",
        f"{floor['p50']:.1f} / {floor['p99']:.1f}",
        "n/a" if row["p99_ratio"] is None else f"{row['p99_ratio']:.1f}",
        side(project, "cpu_us", ",.0f"),
        f"{floor['cpu_us']:,.0f}",
        "n/a" if project is None else f"{project['non2xx']}+{project['errors']}",
        f"{floor['non2xx']}+{floor['errors']}",
        "n/a" if project is None else " ".join(project["splits"]),
        " ".join(floor["splits"]),
    ]


HEADERS = [
    "posts",
    "endpoint",
    "project req/s",
    "floor req/s",
    "ratio (target)",
    "project p50 / p99 ms",
    "floor p50 / p99 ms",
    "p99 ratio",
    "project CPU µs/req",
    "floor CPU µs/req",
    "project non-2xx+errors",
    "floor non-2xx+errors",
    "project worker CPU split %",
    "floor worker CPU split %",
]


def text_table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(line[i]) for line in [headers, *rows]) for i in range(len(headers))]

    def line(cells: list[str]) -> str:
        return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True))

    return "\n".join([line(headers), line(["-" * width for width in widths]), *map(line, rows)])


def markdown_table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def scale_rows(summary: list[dict[str, Any]]) -> list[list[str]]:
    """How each figure changes from the smallest to the largest table."""
    by_label: dict[int, dict[str, dict[str, Any]]] = defaultdict(dict)
    for row in summary:
        by_label[row["posts"]][row["endpoint"]] = row
    if len(by_label) < 2:
        return []
    small, large = min(by_label), max(by_label)
    rows = []
    for endpoint, big in by_label[large].items():
        base = by_label[small].get(endpoint)
        if base is None:
            continue
        line = [endpoint]
        for name in ("project", "floor"):
            if base[name] is None or big[name] is None:
                line += ["n/a", "n/a", "n/a"]
                continue
            before, after = base[name]["rps"], big[name]["rps"]
            line += [f"{before:,.0f}", f"{after:,.0f}", f"{after / before:.2f}"]
        rows.append(line)
    return rows


def scale_headers(summary: list[dict[str, Any]]) -> list[str]:
    sizes = sorted({row["posts"] for row in summary})
    small, large = f"{sizes[0]:,}", f"{sizes[-1]:,}"
    return [
        "endpoint",
        f"project req/s at {small}",
        f"at {large}",
        "change",
        f"floor req/s at {small}",
        f"at {large}",
        "change",
    ]


def rounds_rows(summary: list[dict[str, Any]]) -> list[list[str]]:
    rows = []
    for row in summary:
        project, floor = row["project"], row["floor"]
        rounds = floor["rounds"] if project is None else project["rounds"]
        for index in range(len(rounds)):
            p = None if project is None else project["rounds"][index]
            f = floor["rounds"][index]
            rows.append(
                [
                    f"{row['posts']:,}",
                    row["endpoint"],
                    str(index + 1),
                    "n/a" if p is None else f"{p:,.0f}",
                    f"{f:,.0f}",
                    "n/a" if p is None else f"{p / f:.2f}",
                    "n/a" if project is None else f"{project['other_cpu'][index]:.1f}",
                    f"{floor['other_cpu'][index]:.1f}",
                ]
            )
    return rows


ROUNDS_HEADERS = [
    "posts",
    "endpoint",
    "round",
    "project req/s",
    "floor req/s",
    "ratio",
    "other CPU s (project run)",
    "other CPU s (floor run)",
]


def render_markdown(summary: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    parts = []
    if meta:
        parts.append("\n".join(f"- {key}: {value}" for key, value in meta.items()))
    parts.append(markdown_table(HEADERS, [cells(row) for row in summary]))
    parts.append(NOTES)
    scale = scale_rows(summary)
    if scale:
        parts.append(
            "Scale: median req/s by table size\n\n" + markdown_table(scale_headers(summary), scale)
        )
    parts.append(
        "Every round (other CPU: seconds of CPU used on the machine by anything but the server"
        " under test, PostgreSQL and wrk during that run)\n\n"
        + markdown_table(ROUNDS_HEADERS, rounds_rows(summary))
    )
    return "\n\n".join(parts) + "\n"


NOTES = (
    "Medians over the rounds; ratio = project req/s / floor req/s (the issue's target in"
    " brackets). Latency in ms (medians of the rounds' p50 and p99). non-2xx+errors: wrk's"
    " non-2xx/3xx responses plus socket errors, summed over the rounds. Worker CPU split: the"
    " two busiest workers' shares of the server's CPU in each round (`*`: a worker was recycled"
    " by `max_requests` during the round); a share under 20 % means the keep-alive connections"
    " were pinned to one worker. CPU µs/req: the workers' CPU time per request served (median"
    " of the rounds), which another process on the machine disturbs less than req/s."
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("results", type=Path)
    parser.add_argument("--meta", type=Path, help="`key: value` lines of run facts to list first")
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args()
    records = [json.loads(line) for line in args.results.read_text().splitlines() if line]
    meta = {}
    if args.meta:
        for line in args.meta.read_text().splitlines():
            key, _, value = line.partition(": ")
            meta[key] = value
    summary = summarise(records)
    print(text_table(HEADERS, [cells(row) for row in summary]))
    pinned = [
        f"{row['endpoint']} ({name})"
        for row in summary
        for name in ("project", "floor")
        if row[name] and row[name]["pinned"]
    ]
    if pinned:
        print(f"\nWARNING: a worker idled (pinned connections) in: {', '.join(pinned)}")
    scale = scale_rows(summary)
    if scale:
        print("\nScale: median req/s by table size")
        print(text_table(scale_headers(summary), scale))
    if args.markdown:
        args.markdown.write_text(render_markdown(summary, meta))
        print(f"\nMarkdown written to {args.markdown}")


if __name__ == "__main__":
    main()
