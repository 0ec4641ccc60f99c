"""react-admin's and refine's data providers against the live app, then their writes in SQL.

For each provider: rows seeded over HTTP (tests/frontend/seed.py), `node --test
providers.test.mjs` calling every provider method as Alice (and as Bob and anonymously where
visibility or ownership matters), then the report it writes checked with SQL: created rows
exist with the values sent and Alice as owner, updated rows hold the new values with their
version bumped once per write, deleted rows are gone, rows others were refused are untouched.
"""

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import bindparam, text

from tests.frontend.conftest import node_test, require_node_modules
from tests.frontend.seed import COMMENTS, POSTS, Seed, seed

PROVIDERS = ["ra-data-json-server", "ra-data-simple-rest", "refine-simple-rest"]
TABLES = {"posts": "posts", "comments": "comments"}
OWNER = {"posts": "owner_id", "comments": "author_id"}
CREATE_FIELDS = {"posts": ("title", "content", "published"), "comments": ("body", "post_id")}
UPDATE_FIELDS = {"posts": ("title", "content", "published"), "comments": ("body",)}
Key = tuple[str, int]


async def rows(app: FastAPI, resource: str, ids: list[int]) -> dict[int, dict[str, Any]]:
    statement = text(f'SELECT * FROM "{TABLES[resource]}" WHERE id IN :ids').bindparams(
        bindparam("ids", expanding=True)
    )
    async with app.state.engine.connect() as connection:
        result = await connection.execute(statement, {"ids": ids})
        return {row["id"]: dict(row) for row in result.mappings()}


async def count(app: FastAPI, resource: str) -> int:
    async with app.state.engine.connect() as connection:
        result = await connection.execute(text(f'SELECT count(*) FROM "{TABLES[resource]}"'))
        return int(result.scalar_one())


def pick(data: Mapping[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    return {name: data[name] for name in fields if name in data}


def normalised(row: Mapping[str, Any]) -> dict[str, Any]:
    """SQLite answers booleans as 0 and 1."""
    return {key: bool(value) if key == "published" else value for key, value in row.items()}


async def check_report(
    app: FastAPI, made: Seed, report: dict[str, Any], before: dict[Key, dict[str, Any]]
) -> None:
    caller = made.users["alice"].id
    assert report["caller"] == caller
    # The writes the Node side reports: the provider methods all ran.
    counts = {name: len(report[name]) for name in ("created", "updated", "deleted", "refused")}
    assert counts == {"created": 7, "updated": 4, "deleted": 3, "refused": 2}, counts

    expected: dict[Key, dict[str, Any]] = {}
    versions: dict[Key, int] = {}
    for entry in report["created"]:
        key = (entry["resource"], entry["id"])
        expected[key] = pick(entry["data"], CREATE_FIELDS[entry["resource"]])
        versions[key] = 1
    for entry in report["updated"]:
        key = (entry["resource"], entry["id"])
        assert key in expected, f"updated a row it did not create: {key}"
        expected[key].update(pick(entry["data"], UPDATE_FIELDS[entry["resource"]]))
        versions[key] += 1
    deleted = {(entry["resource"], entry["id"]) for entry in report["deleted"]}

    for resource in TABLES:
        kept = {id_: values for (kind, id_), values in expected.items() if kind == resource}
        gone = [id_ for kind, id_ in deleted if kind == resource]
        found = await rows(app, resource, [*kept, *gone])
        assert not set(gone) & set(found), f"{resource} {gone} were deleted but are still there"
        kept = {id_: values for id_, values in kept.items() if id_ not in gone}
        assert set(found) == set(kept), f"{resource}: rows {set(kept)} expected, {set(found)} found"
        for id_, values in kept.items():
            row = normalised(found[id_])
            assert pick(row, tuple(values)) == values, f"{resource} {id_}: {row}"
            assert row[OWNER[resource]] == caller, f"{resource} {id_}: not the caller's"
            assert row["version"] == versions[(resource, id_)], f"{resource} {id_}: {row}"
            if resource == "posts":
                assert row["votes"] == 0, f"post {id_}: read-only votes were written"

    # What Bob and anonymous callers were refused is exactly as it was before Node ran.
    refused = {(entry["resource"], entry["id"]) for entry in report["refused"]}
    assert refused == set(before), refused
    for (resource, id_), row in before.items():
        assert (await rows(app, resource, [id_]))[id_] == row, f"{resource} {id_} changed"

    created_posts = sum(1 for entry in report["created"] if entry["resource"] == "posts")
    assert await count(app, "posts") == len(POSTS) + created_posts - len(deleted)
    assert await count(app, "comments") == len(COMMENTS) + 1


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_data_provider(provider: str, app: FastAPI, live_url: str, tmp_path: Path) -> None:
    require_node_modules()
    async with AsyncClient(base_url=live_url) as http:
        made = await seed(app, http)
    # The rows Bob and anonymous callers try to change, as seeded (votes bumped alpha's version).
    alpha, c1 = made.posts["alpha"], made.comments["c1"]
    before = {
        ("posts", alpha): (await rows(app, "posts", [alpha]))[alpha],
        ("comments", c1): (await rows(app, "comments", [c1]))[c1],
    }
    report_path = tmp_path / "report.json"
    output = await node_test(
        "providers.test.mjs",
        {
            "API_URL": live_url,
            "PROVIDER": provider,
            "SEED": json.dumps(made.as_json()),
            "ALICE_TOKEN": made.users["alice"].access_token,
            "BOB_TOKEN": made.users["bob"].access_token,
            "REPORT": str(report_path),
        },
    )
    print(output)
    await check_report(app, made, json.loads(report_path.read_text()), before)
