"""Conditional headers on rows that exist: If-None-Match on reads, If-Match on writes.

A read checks `If-None-Match` only after it found the row, so these tests need a row the
caller can see. A post's tag is `"<version>.<digest of the owner's id and name>"`
(app/crud/etag.py): parts the database could not hold (a version past MAX_VERSION, a digest
past 60 bits) are
tags that match nothing (412), never a 422 or a 500.
"""

from typing import Any

import pytest
from httpx import AsyncClient, Response

from tests.crud.conftest import Blog
from tests.crud.formats import assert_problem
from tests.factories import TestUser

POSTS = "/api/v1/posts"
MAX_VERSION = 2**31 - 1  # app/crud/etag.py; the column is a 32-bit integer
MALFORMED = [
    "",
    ",",
    "abc",
    '"unterminated',
    'W/"weak',
    "W/",
    '"a" "b"',
    '"a",,"b"',
    '*, "1"',
    '"1"; "2"',
    "x" * 10_000,
]


async def read(client: AsyncClient, post: dict[str, Any], if_none_match: str | bytes) -> Response:
    return await client.get(f"{POSTS}/{post['id']}", headers={"If-None-Match": if_none_match})


async def current_tag(client: AsyncClient, post: dict[str, Any]) -> str:
    response = await client.get(f"{POSTS}/{post['id']}")
    assert response.status_code == 200
    return response.headers["etag"]


@pytest.mark.parametrize("header", MALFORMED, ids=lambda header: repr(header[:12]))
async def test_a_malformed_if_none_match_on_an_existing_row_is_400(
    client: AsyncClient, post: dict[str, Any], header: str
) -> None:
    assert_problem(await read(client, post, header), 400, "malformed-etag")


async def test_odd_if_none_match_values_are_400(client: AsyncClient, post: dict[str, Any]) -> None:
    tag = await current_tag(client, post)
    for header in (b'"\xe9"x', f'"{tag}"'):  # not ASCII; the tag quoted twice
        assert_problem(await read(client, post, header), 400, "malformed-etag")


async def test_a_draft_answers_a_malformed_if_none_match_like_a_missing_post(
    client: AsyncClient, blog: Blog, owner: TestUser
) -> None:
    """Whatever the order of the checks, the answer must not tell a hidden row from none."""
    draft = await blog.post(owner, title="Draft", published=False)
    hidden = await client.get(f"{POSTS}/{draft['id']}", headers={"If-None-Match": "abc"})
    missing = await client.get(f"{POSTS}/{draft['id'] + 1000}", headers={"If-None-Match": "abc"})
    assert (hidden.status_code, hidden.json()["type"]) == (
        missing.status_code,
        missing.json()["type"],
    )
    mine = await client.get(
        f"{POSTS}/{draft['id']}", headers={**owner.headers, "If-None-Match": "abc"}
    )
    assert_problem(mine, 400, "malformed-etag")


async def test_well_formed_if_none_match_headers(client: AsyncClient, post: dict[str, Any]) -> None:
    tag = await current_tag(client, post)
    version, stamp = tag.strip('"').split(".")
    not_modified = [tag, f"W/{tag}", f'"0.0", {tag}', f' W/"1.2" ,  {tag} ', "*", " * "]
    for header in not_modified:
        response = await read(client, post, header)
        assert response.status_code == 304, (header, response.text)
        assert response.headers["etag"] == tag
        assert response.content == b""
    modified = [
        '"0.0"',
        f'"{int(version) + 1}.{stamp}"',
        f'"{version}.{int(stamp) + 1}"',
        f'"{version}"',  # a part missing
        '""',
        f'"{MAX_VERSION + 1}.{stamp}"',
        f'"{"9" * 20}.{"9" * 20}"',
        f'"{version}.{"9" * 19}"',
        f'"{"9" * 5000}"',
    ]
    for header in modified:
        response = await read(client, post, header)
        assert response.status_code == 200, (header, response.text)
        assert response.headers["etag"] == tag


def write_tags(tag: str) -> dict[str, str]:
    """If-Match tags whose parts do not fit the database, with the current version or stamp."""
    version, stamp = tag.strip('"').split(".")
    return {
        "version past MAX_VERSION": f'"{MAX_VERSION + 1}.{stamp}"',
        "20-digit version": f'"{"9" * 20}.{stamp}"',
        "19-digit stamp": f'"{version}.{"1" + "9" * 18}"',
        "20-digit stamp": f'"{version}.{"9" * 20}"',
        "both": f'"{"9" * 20}.{"9" * 20}"',
    }


async def test_if_match_parts_out_of_range_match_nothing(
    client: AsyncClient, post: dict[str, Any], owner: TestUser
) -> None:
    tag = await current_tag(client, post)
    item = f"{POSTS}/{post['id']}"
    for name, header in write_tags(tag).items():
        headers = {**owner.headers, "If-Match": header}
        patched = await client.patch(item, json={"title": "Changed"}, headers=headers)
        assert patched.status_code == 412, (name, patched.text)
        assert_problem(patched, 412, "precondition-failed")
        deleted = await client.delete(item, headers=headers)
        assert deleted.status_code == 412, (name, deleted.text)
        assert_problem(deleted, 412, "precondition-failed")
        assert await current_tag(client, post) == tag, name  # the row is as it was
    assert_problem(
        await client.delete(item, headers={**owner.headers, "If-Match": f'"{MAX_VERSION}.0"'}),
        412,
        "precondition-failed",
    )


async def test_unusable_if_match_tags_do_not_spoil_the_current_one(
    client: AsyncClient, post: dict[str, Any], owner: TestUser
) -> None:
    tag = await current_tag(client, post)
    item = f"{POSTS}/{post['id']}"
    header = ", ".join([*write_tags(tag).values(), tag])
    patched = await client.patch(
        item, json={"title": "Changed"}, headers={**owner.headers, "If-Match": header}
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["title"] == "Changed"
    fresh = patched.headers["etag"]
    header = ", ".join([*write_tags(fresh).values(), fresh])
    deleted = await client.delete(item, headers={**owner.headers, "If-Match": header})
    assert deleted.status_code == 204, deleted.text
    assert (await client.get(item)).status_code == 404
