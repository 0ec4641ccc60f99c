"""Summarises a py-spy raw (collapsed) profile of one gunicorn worker into where the time goes.

Samples of idle threadpool threads are dropped; the rest (the event loop thread, plus any
busy threadpool thread) is 100 %. Two views: the concerns the benchmark asks about, each
the share of samples with a matching frame anywhere on the stack (inclusive, so they
overlap), and the self time by the package of the innermost frame.

    python -m bench.profile bench/profiles/project-get.raw.txt
"""

import argparse
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

FRAME = re.compile(r"^(?P<function>.*) \((?P<path>.*):(?P<line>\d+)\)$")
IDLE_LEAVES = {"Condition.wait", "Queue.get", "Event.wait", "_wait_for_tstate_lock"}


@dataclass(frozen=True)
class Frame:
    function: str
    path: str

    @property
    def owner(self) -> str:
        """The package a frame belongs to: `sqlalchemy`, `app.crud`, `stdlib:asyncio`..."""
        path = self.path
        if "/site-packages/" in path:
            return path.split("/site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
        if "/app/" in path:
            parts = path.split("/app/", 1)[1].split("/")
            return "app." + parts[0] if len(parts) > 1 else "app"
        if "/bench/" in path:
            return "bench"
        if "/lib/python3" in path:
            module = path.split("/lib/python3", 1)[1].split("/", 2)[1]
            return "stdlib:" + module.removesuffix(".py")
        return "other"


def parse(line: str) -> tuple[list[Frame], int]:
    stack, count = line.rstrip().rsplit(" ", 1)
    frames = []
    for text in stack.split(";"):
        match = FRAME.match(text.strip())
        frames.append(Frame(match["function"], match["path"]) if match else Frame(text.strip(), ""))
    return frames, int(count)


def _in(owner: str) -> Callable[[Frame], bool]:
    return lambda frame: frame.owner == owner


def _named(*names: str, owner: str | None = None) -> Callable[[Frame], bool]:
    return lambda frame: frame.function in names and (owner is None or frame.owner == owner)


def _path(fragment: str) -> Callable[[Frame], bool]:
    return lambda frame: fragment in frame.path


# (label, matcher): a sample counts when any frame of its stack matches.
CONCERNS: list[tuple[str, Callable[[Frame], bool]]] = [
    ("the route's endpoint function (handler body)", _named("run_endpoint_function")),
    (
        "FastAPI dependency resolution (incl. the dependencies' own work)",
        _named("solve_dependencies"),
    ),
    (
        "FastAPI query/path/body validation (request_params_to_args, body_to_args)",
        _named("request_params_to_args", "request_body_to_args"),
    ),
    ("sync dependency run in the threadpool (hop + thread)", _named("run_in_threadpool")),
    ("per-request AsyncSession (get_session dependency)", _named("get_session")),
    (
        "caller lookup (token decode + user query: CallerScheme, get_optional_user)",
        _named("CallerScheme.__call__", "optional_viewer", "get_optional_user"),
    ),
    (
        "routing (route matching)",
        lambda f: f.owner in ("fastapi", "starlette") and f.function.endswith("_match"),
    ),
    ("SQLAlchemy, all (incl. the driver below it)", _in("sqlalchemy")),
    (
        "SQLAlchemy connection checkout (AsyncConnection.start, incl. pool and pre-ping)",
        _named("AsyncConnection.start"),
    ),
    ("SQLAlchemy pre-ping (a round trip per checkout)", _named("DefaultDialect._do_ping_w_event")),
    ("SQLAlchemy connection close/return", _named("AsyncConnection.close", "Connection.close")),
    (
        "statement building (Repository.select/where/order_by/after/visible)",
        _named(
            "Repository.select",
            "Repository.where",
            "Repository.order_by",
            "Repository.after",
            "Repository.visible",
        ),
    ),
    ("SQLAlchemy execute (incl. cache key, compile lookup, driver)", _named("Connection.execute")),
    (
        "SQLAlchemy cache key + compiled-cache lookup",
        _named("ClauseElement._compile_w_cache"),
    ),
    ("greenlet bridge (greenlet_spawn)", _named("greenlet_spawn")),
    (
        "driver path: statement rendering (StatementCache.render/render_prepared)",
        _named("StatementCache.render", "StatementCache.render_prepared"),
    ),
    (
        "driver path: pool checkout (Database._checkout)",
        _named("Database._checkout", "Database.read", "Database.write"),
    ),
    ("psycopg driver (execute, wait, fetch, adapt)", _in("psycopg")),
    ("psycopg_pool", _in("psycopg_pool")),
    (
        "response validation + serialisation (TypeAdapter validate_python / dump_json)",
        _named("TypeAdapter.validate_python", "TypeAdapter.dump_json"),
    ),
    ("SQLModel __init__ during response validation", _named("sqlmodel_init")),
    ("orjson", _in("orjson")),
    ("Repository.shape (row -> dict)", _named("Repository.shape")),
    (
        "JSON of items and pages (Representation.item/page)",
        _named("Representation.item", "Representation.page"),
    ),
    ("cursor encode/decode + fingerprint", _path("/app/crud/cursor.py")),
    ("JWT decode", _in("jwt")),
    ("access log line (json.dumps + logging)", _in("stdlib:logging")),
    (
        "app middleware (request id, headers, log), inclusive",
        _named("RequestContextMiddleware.__call__"),
    ),
    ("writing the response (uvicorn send)", _named("RequestResponseCycle.send")),
]


def summarise(path: Path, top: int = 12) -> str:
    samples: list[tuple[list[Frame], int]] = []
    idle = 0
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        frames, count = parse(line)
        if frames[-1].function in IDLE_LEAVES:
            idle += count
            continue
        samples.append((frames, count))
    total = sum(count for _, count in samples) or 1
    lines = [
        f"{path.name}: {total} busy samples ({idle} idle threadpool samples dropped)",
        "",
        "Concerns (inclusive share of busy samples; they overlap):",
    ]
    for label, matches in CONCERNS:
        hits = sum(count for frames, count in samples if any(matches(f) for f in frames))
        if hits:
            lines.append(f"  {100 * hits / total:5.1f} %  {label}")
    owners: Counter[str] = Counter()
    functions: Counter[str] = Counter()
    for frames, count in samples:
        owners[frames[-1].owner] += count
        functions[f"{frames[-1].function} [{frames[-1].owner}]"] += count
    lines += ["", "Self time by package of the innermost Python frame:"]
    lines += [f"  {100 * n / total:5.1f} %  {name}" for name, n in owners.most_common(top)]
    lines += ["", "Self time by function:"]
    lines += [f"  {100 * n / total:5.1f} %  {name}" for name, n in functions.most_common(top)]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("profiles", type=Path, nargs="+")
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args()
    print("\n".join(summarise(path, args.top) for path in args.profiles), end="")


if __name__ == "__main__":
    main()
