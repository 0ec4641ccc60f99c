"""Checks that the floor answers like the project before they are compared for speed.

Sends the benchmark's requests to both servers and compares status, body (cursors are opaque,
so only their presence is compared; server-side times and new ids are masked on writes) and
the `X-Total-Count` / `Link` headers. Also finds out whether the project serves cursor pages.
Writes `compare.json` into --out and prints one line per mismatch.
"""

import argparse
import json
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any


def quote(value: str) -> str:
    return urllib.parse.quote(value, safe="")


MASKED_ON_WRITES = ("id", "created_at", "updated_at")


def fetch(
    url: str, method: str = "GET", body: dict[str, Any] | None = None, token: str | None = None
) -> tuple[int, dict[str, str], Any]:
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data, headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, raw, found = response.status, response.read(), response.headers
    except urllib.error.HTTPError as error:
        status, raw, found = error.code, error.read(), error.headers
    return status, {k.lower(): v for k, v in found.items()}, json.loads(raw) if raw else None


def normalise(body: Any, mask: tuple[str, ...] = ()) -> Any:
    """Cursors become a presence flag; masked keys are dropped (recursively into items)."""
    if isinstance(body, dict):
        result = {}
        for key, value in body.items():
            if key in mask:
                continue
            result[key] = (value is not None) if key == "next_cursor" else normalise(value, mask)
        return result
    if isinstance(body, list):
        return [normalise(item, mask) for item in body]
    return body


class Comparison:
    def __init__(self, project: str, floor: str) -> None:
        self.project, self.floor = project, floor
        self.checks = 0
        self.estimated = 0
        self.mismatches: list[str] = []

    def same(
        self,
        path: str,
        method: str = "GET",
        body: dict[str, Any] | None = None,
        token: str | None = None,
        mask: tuple[str, ...] = (),
    ) -> tuple[Any, Any]:
        answers = [fetch(base + path, method, body, token) for base in (self.project, self.floor)]
        (p_status, p_headers, p_body), (f_status, f_headers, f_body) = answers
        self.checks += 1
        label = f"{method} {path}"
        # Past the resource's count_limit the project estimates the total; the floor counts.
        estimated = isinstance(p_body, dict) and p_body.get("total_estimated") is True
        if estimated:
            self.estimated += 1
            mask = (*mask, "total", "total_estimated")
        if p_status != f_status:
            self.mismatches.append(f"{label}: status {p_status} (project) vs {f_status} (floor)")
        elif p_status < 300 and normalise(p_body, mask) != normalise(f_body, mask):
            self.mismatches.append(f"{label}: bodies differ: {p_body!r:.300} vs {f_body!r:.300}")
        headers = ("etag",) if estimated else ("x-total-count", "link", "etag")
        for header in headers if method == "GET" else ():
            ours = p_headers.get(header, "").replace(self.project, "")
            theirs = f_headers.get(header, "").replace(self.floor, "")
            if p_status < 300 and ours != theirs:
                self.mismatches.append(f"{label}: {header} {ours!r} vs {theirs!r}")
        return p_body, f_body


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--project", required=True, help="base URL, e.g. http://127.0.0.1:8000")
    parser.add_argument("--floor", required=True)
    parser.add_argument("--tokens", type=Path, required=True, help="owned.txt of bench.fixtures")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    owners = [line.split() for line in args.tokens.read_text().splitlines() if line]
    token, own_ids = owners[0][0], owners[0][1:]
    check = Comparison(args.project, args.floor)

    for item_id in (1, 7, 4999, 50, 10**9):  # 50: unpublished, 10**9: missing
        check.same(f"/api/v1/posts/{item_id}")
    check.same(f"/api/v1/posts/{own_ids[-1]}", token=token)
    for query in ("limit=20&offset=0", "limit=20&offset=100", "limit=20&offset=9000"):
        check.same(f"/api/v1/posts?{query}")
    check.same("/api/v1/posts?published=true&sort=-created_at&limit=20")
    for item_id in (7, 50):  # the expand endpoints (50: unpublished)
        check.same(f"/api/v1/posts/{item_id}?expand=comments")
    check.same("/api/v1/posts?limit=20&offset=100&expand=owner,comments.author")
    for start in (0, 100, 9000):  # the json-server dialect's list
        check.same(f"/api/compat/json-server/posts?_start={start}&_end={start + 20}")
    new = {"title": "Compared", "content": "Same JSON?", "published": True}
    check.same("/api/v1/posts", "POST", new, token, MASKED_ON_WRITES)
    check.same(f"/api/v1/posts/{own_ids[0]}", "PATCH", {"title": "Edited"}, token, ("updated_at",))

    first, _ = check.same("/api/v1/posts?limit=20")
    project_cursor = bool(first and first.get("next_cursor"))
    if project_cursor:
        project_page, floor_page = first, fetch(args.floor + "/api/v1/posts?limit=20")[2]
        for _ in range(3):
            project_page = fetch(
                args.project + "/api/v1/posts?limit=20&cursor=" + quote(project_page["next_cursor"])
            )[2]
            floor_page = fetch(
                args.floor + "/api/v1/posts?limit=20&cursor=" + quote(floor_page["next_cursor"])
            )[2]
            check.checks += 1
            if normalise(project_page) != normalise(floor_page):
                check.mismatches.append("cursor pages differ")
                break

    for mismatch in check.mismatches:
        print(f"MISMATCH {mismatch}", flush=True)
    print(
        f"compared {check.checks} requests: {len(check.mismatches)} mismatches"
        f" ({check.estimated} with an estimated total, compared without it);"
        f" project cursor pages: {'yes' if project_cursor else 'no'}",
        flush=True,
    )
    args.out.mkdir(parents=True, exist_ok=True)
    result = {
        "checks": check.checks,
        "mismatches": check.mismatches,
        "project_cursor": project_cursor,
    }
    (args.out / "compare.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
