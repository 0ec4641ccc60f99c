"""Checks that the floor answers like the project before they are compared for speed.

Sends the benchmark's requests to both servers and compares status, body (cursors are opaque,
so only their presence is compared; server-side times and new ids are masked on writes) and
the `X-Total-Count` / `Link` headers. Also finds out whether the project serves cursor pages.
With --changes it also compares the change feed (`/api/v1/posts/changes`: first-round pages,
tokens of either server read by the other, another viewer, a write and delete round with its
tombstones) and then makes the `changes` endpoint's fixture and compares that request: its
`changes.txt` must be made after the last write here.
Writes `compare.json` into --out and prints one line per mismatch.
"""

import argparse
import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from bench.fixtures import CHANGED_POSTS, prepare_changes, since_now


def quote(value: str) -> str:
    return urllib.parse.quote(value, safe="")


MASKED_ON_WRITES = ("id", "created_at", "updated_at")
CHANGES = "/api/v1/posts/changes"


def sync_fields(token: str) -> list[Any]:
    """A sync token's payload, [resource, stamp, row_id, floor, initial, taken_at] (its
    signature is the servers' business: each reads the other's tokens in the checks)."""
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    return json.loads(raw[:-12])  # type: ignore[no-any-return]


def snapshot_part(fields: list[Any]) -> tuple[list[Any], int]:
    """A token's fields without `taken_at` (seconds, differs), and apart the one value that
    comes from the database snapshot (the xmin: the `floor` of a round the page began, or a
    since token's stamp): another database's transactions on the cluster move it between two
    requests, so it is compared as within the project's values read before and after."""
    resource, stamp, row_id, floor, initial, _taken_at = fields
    if floor is None:  # a since token: (floor - 1, the largest row id)
        return [resource, None, row_id, floor, initial], stamp
    return [resource, stamp, row_id, None, initial], floor


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

    def same_changes(self, query: str, token: str | None = None) -> tuple[Any, Any]:
        """`same` for a change-feed page: the body without its `token`, and the tokens' fields
        (see snapshot_part)."""
        path = f"{CHANGES}?{query}"
        answers = [fetch(base + path, token=token) for base in (self.project, self.floor)]
        (p_status, _, p_body), (f_status, _, f_body) = answers
        self.checks += 1
        label = f"GET {path[:120]}"
        if p_status != f_status:
            self.mismatches.append(f"{label}: status {p_status} (project) vs {f_status} (floor)")
            return p_body, f_body
        if p_status >= 300:
            return p_body, f_body
        p_rest = {key: value for key, value in p_body.items() if key != "token"}
        f_rest = {key: value for key, value in f_body.items() if key != "token"}
        if p_rest != f_rest:
            self.mismatches.append(f"{label}: bodies differ: {p_body!r:.300} vs {f_body!r:.300}")
        (p_fields, p_xmin), (f_fields, f_xmin) = (
            snapshot_part(sync_fields(body["token"])) for body in (p_body, f_body)
        )
        if p_fields != f_fields:
            self.mismatches.append(f"{label}: tokens {p_fields} vs {f_fields}")
        elif f_xmin != p_xmin:
            after = snapshot_part(sync_fields(fetch(self.project + path, token=token)[2]["token"]))
            if not p_xmin <= f_xmin <= after[1]:
                self.mismatches.append(
                    f"{label}: snapshot xmin {f_xmin} (floor) outside {p_xmin}..{after[1]}"
                )
        return p_body, f_body

    def expect(self, label: str, found: Any, expected: Any) -> None:
        """A premise of the checks (what the project answers must be what we wrote)."""
        if found != expected:
            self.mismatches.append(f"{label}: {found!r:.200}, expected {expected!r:.200}")


def compare_changes_reads(check: Comparison, token: str) -> None:
    """The first round's pages, each server's token read by both, another viewer, bad input."""
    project_page, floor_page = check.same_changes("limit=100")
    check.expect("first changes page has_more", project_page.get("has_more"), True)
    for page in (project_page, floor_page):  # the floor's token read by the project, too
        check.same_changes(f"limit=100&since={quote(page['token'])}")
    check.same_changes("limit=100", token=token)  # a signed-in viewer: own drafts visible
    for query in ("since=not-a-token", "limit=0", "limit=1001"):
        check.same_changes(query)


def compare_changes_writes(
    check: Comparison, since: str, token: str, own_id: str, created: list[int]
) -> None:
    """After the write checks (a create on each server, an update from each) and the delete
    of both created posts: the updated post as an item, the created ones as tombstones."""
    for item_id in created:
        request = urllib.request.Request(
            f"{check.project}/api/v1/posts/{item_id}",
            headers={"Authorization": f"Bearer {token}"},
            method="DELETE",
        )
        with urllib.request.urlopen(request, timeout=30):
            pass
    page, _ = check.same_changes(f"limit=100&since={quote(since)}")
    found = ([item["data"]["id"] for item in page["items"]], page["deleted"])
    check.expect("changes after the writes", found, ([int(own_id)], sorted(created)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--project", required=True, help="base URL, e.g. http://127.0.0.1:8000")
    parser.add_argument("--floor", required=True)
    parser.add_argument("--tokens", type=Path, required=True, help="owned.txt of bench.fixtures")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument(
        "--changes",
        metavar="DATABASE_URL",
        help="also compare the change feed, then make the changes fixture (changes.txt)",
    )
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
    if args.changes:
        compare_changes_reads(check, token)
        since = since_now(args.project)
    new = {"title": "Compared", "content": "Same JSON?", "published": True}
    created = check.same("/api/v1/posts", "POST", new, token, MASKED_ON_WRITES)
    created_ids = [body["id"] for body in created if isinstance(body, dict) and "id" in body]
    check.same(f"/api/v1/posts/{own_ids[0]}", "PATCH", {"title": "Edited"}, token, ("updated_at",))
    if args.changes:
        compare_changes_writes(check, since, token, own_ids[0], created_ids)

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

    if args.changes:  # the last writes to posts before the rounds: the changes fixture
        since = prepare_changes(args.project, args.changes, args.out, since)
        page, _ = check.same_changes(f"limit={CHANGED_POSTS}&since={quote(since)}")
        shape = (len(page.get("items", ())), page.get("deleted"), page.get("has_more"))
        check.expect("the changes request", shape, (CHANGED_POSTS, [], False))

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
