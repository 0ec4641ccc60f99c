"""Live feed throughput: events one worker delivers to many Server-Sent Events clients (issue 17).

Opens --clients anonymous streams on `GET /api/v1/posts/events` of a server running ONE
worker (scripts/bench --sse starts it), waits for every stream's `ready` event, then a writer
process commits changes to published posts in SQL for --duration seconds: the triggers stamp
them and NOTIFY the worker, as for any writer, and the worker reads each batch of changes once
per group of streams at the same position and sends it as one `changes` event to each. It
runs once per rate of --rates (commits per second; `max`: as fast as one connection commits),
each with fresh streams, --batch posts per commit. A stream the server ends (it closes one
that lags SSE_QUEUE_EVENTS behind) reconnects with Last-Event-ID, as EventSource does.

Each change sets its post's title to `sse <sequence number>`; every client parses every event
and notes when each change arrived, against the writer's commit time (both CLOCK_MONOTONIC on
this machine). Reported per rate: changes committed per second; `changes` events and change
records delivered per second over all clients; the latency from commit to receipt over every
(client, change); changes some client never got (should be 0); the share of change records
that repeated one the client already had; how many streams got each distinct event (streams
at one position share one read of the feed); reconnects; the CPU of the worker, PostgreSQL,
the clients, the writer and everything else. Everything runs on the same machine, so with 2
cores the figures are CPU-bound: the clients and the writer take their share, shown in the
CPU columns.

    python -m bench.sse --url http://127.0.0.1:8000 --database-url ... --master PID
"""

import argparse
import asyncio
import json
import multiprocessing
import resource
import statistics
import time
from array import array
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import psycopg

from bench.cpu import TICK, alive, snapshot
from bench.seed import libpq_url

TITLE_PREFIX = "sse "
READY_TIMEOUT = 60.0
DRAIN_TIMEOUT = 15.0  # after the writer stops: until every client has every change
RECONNECT_SECONDS = 0.5  # EventSource waits a few seconds (the server may set `retry:`)
UPDATE_ONE = "UPDATE posts SET title = %s, updated_at = now(), version = version + 1 WHERE id = %s"
UPDATE_MANY = (
    "UPDATE posts p SET title = v.title, updated_at = now(), version = p.version + 1"
    " FROM unnest(%s::int[], %s::text[]) AS v(id, title) WHERE p.id = v.id"
)


# -- the clients -----------------------------------------------------------------------------


@dataclass(eq=False)
class Client:
    """One EventSource-like client: what it received, when, over its reconnects."""

    ready: asyncio.Event = field(default_factory=asyncio.Event)
    events: int = 0  # `changes` events
    records: int = 0  # items and deleted ids in them
    seqs: array = field(default_factory=lambda: array("q"))  # type: ignore[type-arg]
    times: array = field(default_factory=lambda: array("d"))  # type: ignore[type-arg]
    latest: int = -1  # highest sequence number received
    last_id: bytes | None = None  # the last event's id: Last-Event-ID on a reconnect
    reconnects: int = 0  # streams the server ended (a lagging client is closed), resumed
    error: str | None = None


class Run:
    """The streams of one rate, and what their events held (parsed once per distinct body)."""

    def __init__(self) -> None:
        self.clients: list[Client] = []
        self.parsed: dict[bytes, tuple[list[int], int]] = {}  # data -> (sequence numbers, records)
        self.last_receipt = 0.0
        self.progress = asyncio.Event()  # set by every event and every end of a stream

    def changes(self, data: bytes) -> tuple[list[int], int]:
        found = self.parsed.get(data)
        if found is None:
            body = orjson.loads(data)
            seqs = [
                int(title[len(TITLE_PREFIX) :])
                for item in body["items"]
                if (title := item["data"]["title"]).startswith(TITLE_PREFIX)
            ]
            found = self.parsed[data] = (seqs, len(body["items"]) + len(body["deleted"]))
        return found

    def event(self, client: Client, block: bytes, received: float) -> None:
        kind, data, event_id = b"message", [], None
        for line in block.split(b"\n"):
            name, _, value = line.partition(b":")
            value = value.removeprefix(b" ")
            if name == b"event":
                kind = value
            elif name == b"data":
                data.append(value)
            elif name == b"id":
                event_id = value
        if event_id is not None:
            client.last_id = event_id
        if kind == b"ready":
            client.ready.set()
        elif kind == b"changes":
            seqs, records = self.changes(b"\n".join(data))
            client.events += 1
            client.records += records
            for seq in seqs:
                client.seqs.append(seq)
                client.times.append(received)
                client.latest = max(client.latest, seq)
            self.last_receipt = received
            self.progress.set()


async def stream(run: Run, client: Client, url: str) -> None:
    """Follow the event stream as EventSource does: when the server ends it (it closes a
    client that lags SSE_QUEUE_EVENTS behind), reconnect after RECONNECT_SECONDS with
    Last-Event-ID, which resumes with no gap. Raw HTTP/1.1 (chunked), one connection a time."""
    parts = urlsplit(url)
    try:
        while True:
            await follow(run, client, parts)
            client.reconnects += 1
            run.progress.set()
            await asyncio.sleep(RECONNECT_SECONDS)
    except Exception as error:  # reported with the run
        client.error = repr(error)
    finally:
        client.ready.set()  # never wait for a stream that failed
        run.progress.set()


async def follow(run: Run, client: Client, parts: Any) -> None:
    """One connection: its events, until the stream ends."""
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port, limit=2**24)
    try:
        resume = b"" if client.last_id is None else b"Last-Event-ID: " + client.last_id + b"\r\n"
        writer.write(
            f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n".encode()
            + b"Accept: text/event-stream\r\n"
            + resume
            + b"\r\n"
        )
        head = await reader.readuntil(b"\r\n\r\n")
        status = head.split(b" ", 2)[1]
        if status != b"200":
            raise RuntimeError(f"status {status.decode()}: {(await reader.read(500))!r}")
        chunked = b"transfer-encoding: chunked" in head.lower()
        pending = b""
        while True:
            if chunked:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    return
                data = (await reader.readexactly(size + 2))[:-2]
            else:
                data = await reader.read(2**16)
                if not data:
                    return
            received = time.monotonic()
            if b"\r" in data:
                data = data.replace(b"\r\n", b"\n")
            pending += data
            while (end := pending.find(b"\n\n")) >= 0:
                block, pending = pending[:end], pending[end + 2 :]
                run.event(client, block, received)
    except (asyncio.IncompleteReadError, ConnectionError):
        return  # the server dropped the connection: reconnect
    finally:
        writer.close()


# -- the writer ------------------------------------------------------------------------------


def write_changes(
    database_url: str,
    posts: list[int],
    rate: float,
    batch: int,
    duration: float,
    first_seq: int,
    pipe: Connection,
) -> None:
    """A separate process, so its commit times are taken the moment each commit returns."""
    with psycopg.connect(libpq_url(database_url), autocommit=True) as connection:
        pipe.send("ready")
        pipe.recv()  # go
        commits = array("d")
        started = time.monotonic()
        seq, count = first_seq, 0
        while (now := time.monotonic()) < started + duration:
            if rate:
                due = started + count / rate
                if due > now:
                    time.sleep(due - now)
            seqs = range(seq, seq + batch)
            ids = [posts[number % len(posts)] for number in seqs]
            titles = [f"{TITLE_PREFIX}{number}" for number in seqs]
            if batch == 1:
                connection.execute(UPDATE_ONE, (titles[0], ids[0]))
            else:
                connection.execute(UPDATE_MANY, (ids, titles))
            commits.append(time.monotonic())
            seq += batch
            count += 1
        usage = resource.getrusage(resource.RUSAGE_SELF)
        pipe.send((started, time.monotonic(), commits.tobytes(), usage.ru_utime + usage.ru_stime))


# -- one rate ----------------------------------------------------------------------------------


def cpu_self() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(share * len(values)))]


async def measure(
    args: argparse.Namespace, rate: float, posts: list[int], first_seq: int
) -> dict[str, Any]:
    run = Run()
    url = f"{args.url}/api/v1/posts/events"
    run.clients = [Client() for _ in range(args.clients)]
    began = time.monotonic()
    tasks = [asyncio.create_task(stream(run, client, url)) for client in run.clients]
    await asyncio.wait_for(
        asyncio.gather(*(client.ready.wait() for client in run.clients)), READY_TIMEOUT
    )
    failed = [client.error for client in run.clients if client.error]
    if failed:
        raise SystemExit(f"{len(failed)} streams failed to open: {failed[0]}")
    connected = time.monotonic() - began

    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    writer = context.Process(
        target=write_changes,
        args=(args.database_url, posts, rate, args.batch, args.duration, first_seq, theirs),
    )
    writer.start()
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, ours.recv)  # connected
    await asyncio.sleep(0.5)  # the streams' first catch-up passes are over
    before, cpu_before = snapshot(args.master), cpu_self()
    ours.send("go")
    started, stopped, commits_raw, writer_cpu = await loop.run_in_executor(None, ours.recv)
    writer.join()
    commits = array("d")
    commits.frombytes(commits_raw)
    last_seq = first_seq + len(commits) * args.batch - 1
    deadline = time.monotonic() + DRAIN_TIMEOUT
    while any(client.latest < last_seq and not client.error for client in run.clients):
        run.progress.clear()
        try:
            await asyncio.wait_for(run.progress.wait(), deadline - time.monotonic())
        except TimeoutError:
            break
    after, cpu_after = snapshot(args.master), cpu_self()
    if not alive(args.master):
        raise SystemExit("the server stopped during the SSE run; see its log")
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)

    # Every change each client got, timed from its commit. A change not received counts as
    # missed unless a later change to the same post was (the feed sends the latest state).
    total = len(commits) * args.batch
    latencies: list[float] = []
    missed = received_changes = 0
    cycle = len(posts)
    for client in run.clients:
        got = set()
        received_changes += len(client.seqs)
        for seq, received in zip(client.seqs, client.times, strict=True):
            if seq < first_seq or seq in got:
                continue
            got.add(seq)
            latencies.append(received - commits[(seq - first_seq) // args.batch])
        for seq in range(first_seq, last_seq + 1):
            if seq not in got and not any(
                later in got for later in range(seq + cycle, last_seq + 1, cycle)
            ):
                missed += 1
    latencies.sort()
    window = max(run.last_receipt, stopped) - started
    events = sum(client.events for client in run.clients)
    records = sum(client.records for client in run.clients)
    workers = {pid: ticks - before.workers.get(pid, 0) for pid, ticks in after.workers.items()}
    tick = float(TICK)
    worker_cpu = sum(workers.values()) / tick
    postgres_cpu = (after.postgres - before.postgres) / tick
    clients_cpu = cpu_after - cpu_before
    busy = (after.busy - before.busy) / tick
    return {
        "rate": f"{rate:g}" if rate else "max",
        "batch": args.batch,
        "clients": args.clients,
        "connect_s": round(connected, 2),
        "seconds": round(stopped - started, 2),
        "window_s": round(window, 2),
        "commits": len(commits),
        "changes": total,
        "changes_per_s": total / (stopped - started),
        "events": events,
        "events_per_s": events / window,
        "records": records,
        "records_per_s": records / window,
        "records_per_event": records / max(events, 1),
        # Repeats: a change sent again (the next read starts from the snapshot's xmin, which
        # any transaction still running on the cluster, in any database, holds down).
        "repeated_share": 1 - len(latencies) / max(received_changes, 1),
        # Streams that got the same event (one read of the feed per group at one position).
        "clients_per_event": events / max(len(run.parsed), 1),
        "distinct_events": len(run.parsed),
        "latency_ms": {
            name: 1000 * percentile(latencies, share)
            for name, share in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0))
        }
        | {"mean": 1000 * statistics.fmean(latencies) if latencies else float("nan")},
        "missed": missed,
        "reconnects": sum(client.reconnects for client in run.clients),
        "errors": [client.error for client in run.clients if client.error][:3],
        "worker_cpu": round(worker_cpu, 2),
        "postgres_cpu": round(postgres_cpu, 2),
        "clients_cpu": round(clients_cpu, 2),
        "writer_cpu": round(writer_cpu, 2),
        "other_cpu": round(max(busy - worker_cpu - postgres_cpu - clients_cpu - writer_cpu, 0), 2),
    }


# -- report ------------------------------------------------------------------------------------

HEADERS = [
    "writer rate (commits/s)",
    "changes/s",
    "events/s (all clients)",
    "records/s (all clients)",
    "records / event",
    "repeated records",
    "streams / distinct event",
    "latency p50 / p90 / p99 / max ms",
    "missed",
    "reconnects",
    "CPU s: worker / PostgreSQL / clients / writer / other",
]


def cells(result: dict[str, Any]) -> list[str]:
    latency = result["latency_ms"]
    return [
        str(result["rate"]) + (f", {result['batch']} posts each" if result["batch"] > 1 else ""),
        f"{result['changes_per_s']:,.0f}",
        f"{result['events_per_s']:,.0f}",
        f"{result['records_per_s']:,.0f}",
        f"{result['records_per_event']:.1f}",
        f"{100 * result['repeated_share']:.0f} %",
        f"{result['clients_per_event']:.1f}",
        " / ".join(f"{latency[key]:.1f}" for key in ("p50", "p90", "p99", "max")),
        f"{result['missed']}",
        f"{result['reconnects']}",
        " / ".join(
            f"{result[key]:.1f}"
            for key in ("worker_cpu", "postgres_cpu", "clients_cpu", "writer_cpu", "other_cpu")
        ),
    ]


def table(rows: list[list[str]], markdown: bool) -> str:
    if markdown:
        lines = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
        return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])
    widths = [max(len(line[i]) for line in [HEADERS, *rows]) for i in range(len(HEADERS))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True))
        for line in [HEADERS, ["-" * width for width in widths], *rows]
    )


def published_posts(database_url: str) -> list[int]:
    with psycopg.connect(libpq_url(database_url)) as connection:
        rows = connection.execute("SELECT id FROM posts WHERE published ORDER BY id").fetchall()
    return [row[0] for row in rows]


async def main_async(args: argparse.Namespace) -> list[dict[str, Any]]:
    posts = published_posts(args.database_url)
    results, first_seq = [], 0
    for rate in args.rates:
        result = await measure(args, rate, posts, first_seq)
        first_seq += result["changes"]
        results.append(result)
        print(
            f"[sse] rate {result['rate']}: {result['changes_per_s']:,.0f} changes/s,"
            f" {result['events_per_s']:,.0f} events/s and {result['records_per_s']:,.0f}"
            f" records/s to {args.clients} clients, latency p50"
            f" {result['latency_ms']['p50']:.1f} ms p99 {result['latency_ms']['p99']:.1f} ms,"
            f" missed {result['missed']}, worker CPU {result['worker_cpu']:.1f} s",
            flush=True,
        )
        await asyncio.sleep(1)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", required=True, help="the server's base URL (one worker)")
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--master", type=int, required=True, help="the gunicorn master's pid")
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument(
        "--rates", default="10,100,max", help="writer commits per second, `max`: unpaced"
    )
    parser.add_argument("--batch", type=int, default=1, help="posts changed per commit")
    parser.add_argument("--out", type=Path, help="append one JSON line per rate")
    parser.add_argument("--markdown", type=Path, help="also write the table as Markdown")
    parser.add_argument("--meta", type=Path, help="`key: value` lines to list above it")
    args = parser.parse_args()
    args.rates = [0.0 if rate == "max" else float(rate) for rate in args.rates.split(",")]
    try:
        import uvloop

        results = uvloop.run(main_async(args))
    except ImportError:
        results = asyncio.run(main_async(args))
    rows = [cells(result) for result in results]
    print()
    print(table(rows, markdown=False))
    if args.out:
        with args.out.open("a") as out:
            for result in results:
                out.write(json.dumps(result) + "\n")
    if args.markdown:
        meta = args.meta.read_text().splitlines() if args.meta else []
        lines = [f"- {line}" for line in meta if line]
        args.markdown.write_text("\n".join([*lines, "", table(rows, markdown=True)]) + "\n")
        print(f"\nMarkdown written to {args.markdown}")


if __name__ == "__main__":
    main()
