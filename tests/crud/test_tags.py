"""The generated tags resource over HTTP: CRUD, validation and access rules.

Written by:

    python scripts/new_resource.py Tag slug:str:unique:max=64 name:str:max=64 --owner
        --search name

Grow it with the resource.
"""

from collections.abc import Callable, Iterable
from typing import Any

from httpx import AsyncClient

from tests.crud.formats import assert_problem, error_locs
from tests.factories import TestUser, UserFactory

URL = "/api/v1/tags"
FIELDS: dict[str, Any] = {"slug": "Sample slug", "name": "Sample name"}
CHANGE: dict[str, Any] = {"slug": "Changed slug"}
PARSE: dict[str, Callable[[Any], Any]] = {}


def parsed(body: dict[str, Any], names: Iterable[str]) -> dict[str, Any]:
    """The named fields, parsed where JSON can spell one value several ways."""
    return {name: PARSE.get(name, lambda value: value)(body[name]) for name in names}


async def create(
    client: AsyncClient, url: str, body: dict[str, Any], user: TestUser
) -> dict[str, Any]:
    response = await client.post(url, json=body, headers=user.headers)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]  # a JSON object, as asserted


async def payload(client: AsyncClient, users: UserFactory, user: TestUser) -> dict[str, Any]:
    """FIELDS plus references, whose records are created first (by `user` where it may)."""

    return dict(FIELDS)


async def writer(users: UserFactory) -> TestUser:
    return await users.create()


async def test_create_get_and_list(client: AsyncClient, users: UserFactory) -> None:
    user = await writer(users)
    body = await payload(client, users, user)
    created = await create(client, URL, body, user)
    assert parsed(created, body) == parsed(body, body)
    assert created.keys() >= {"id", "created_at", "updated_at"}
    assert created["owner_id"] == user.id
    read = await client.get(f"{URL}/{created['id']}", headers=user.headers)
    assert read.status_code == 200, read.text
    assert read.json() == created
    listed = await client.get(URL, headers=user.headers)
    assert listed.status_code == 200, listed.text
    assert [row["id"] for row in listed.json()["items"]] == [created["id"]]
    assert listed.json()["total"] == 1


async def test_update(client: AsyncClient, users: UserFactory) -> None:
    user = await writer(users)
    created = await create(client, URL, await payload(client, users, user), user)
    item = f"{URL}/{created['id']}"
    response = await client.patch(item, json=CHANGE, headers=user.headers)
    assert response.status_code == 200, response.text
    assert parsed(response.json(), CHANGE) == parsed(CHANGE, CHANGE)
    read = await client.get(item, headers=user.headers)
    assert parsed(read.json(), CHANGE) == parsed(CHANGE, CHANGE)


async def test_delete(client: AsyncClient, users: UserFactory) -> None:
    user = await writer(users)
    created = await create(client, URL, await payload(client, users, user), user)
    item = f"{URL}/{created['id']}"
    response = await client.delete(item, headers=user.headers)
    assert response.status_code == 204, response.text
    assert_problem(await client.get(item, headers=user.headers), 404)


async def test_unknown_field_is_422(client: AsyncClient, users: UserFactory) -> None:
    user = await writer(users)
    body = {**await payload(client, users, user), "not_a_field": 1}
    response = await client.post(URL, json=body, headers=user.headers)
    assert ["body", "not_a_field"] in error_locs(assert_problem(response, 422))


async def test_bulk_create_and_delete(client: AsyncClient, users: UserFactory) -> None:
    user = await writer(users)
    body = await payload(client, users, user)
    response = await client.post(f"{URL}/batch", json=[body], headers=user.headers)
    assert response.status_code == 201, response.text
    [written] = response.json()["items"]
    assert parsed(written["data"], body) == parsed(body, body)
    item = f"{URL}/{written['data']['id']}"
    assert (await client.get(item, headers=user.headers)).headers["etag"] == written["etag"]
    ids = [written["data"]["id"]]
    gone = await client.request("DELETE", f"{URL}/batch", json=ids, headers=user.headers)
    assert gone.status_code == 204, gone.text
    assert_problem(await client.get(item, headers=user.headers), 404)


async def test_changes_follow_writes(client: AsyncClient, users: UserFactory) -> None:
    user = await writer(users)

    async def changes(since: str | None = None) -> dict[str, Any]:
        params = {"since": since} if since else {}
        response = await client.get(f"{URL}/changes", params=params, headers=user.headers)
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]  # a JSON object, as asserted

    token = (await changes())["token"]
    created = await create(client, URL, await payload(client, users, user), user)
    page = await changes(token)
    assert created["id"] in [item["data"]["id"] for item in page["items"]]
    gone = await client.delete(f"{URL}/{created['id']}", headers=user.headers)
    assert gone.status_code == 204, gone.text
    assert created["id"] in (await changes(page["token"]))["deleted"]


async def test_missing_required_field_is_422(client: AsyncClient, users: UserFactory) -> None:
    user = await writer(users)
    body = await payload(client, users, user)
    del body["slug"]
    response = await client.post(URL, json=body, headers=user.headers)
    assert ["body", "slug"] in error_locs(assert_problem(response, 422))


async def test_anonymous_writes_are_401(client: AsyncClient, users: UserFactory) -> None:
    user = await writer(users)
    body = await payload(client, users, user)
    assert_problem(await client.post(URL, json=body), 401)
    created = await create(client, URL, body, user)
    item = f"{URL}/{created['id']}"
    assert_problem(await client.patch(item, json=CHANGE), 401)
    assert_problem(await client.delete(item), 401)


async def test_anonymous_reads(client: AsyncClient, users: UserFactory) -> None:
    user = await writer(users)
    created = await create(client, URL, await payload(client, users, user), user)
    assert (await client.get(f"{URL}/{created['id']}")).status_code == 200
    assert (await client.get(URL)).json()["total"] == 1


async def test_only_the_owner_writes(client: AsyncClient, users: UserFactory) -> None:
    user = await writer(users)
    other = await users.create()
    created = await create(client, URL, await payload(client, users, user), user)
    item = f"{URL}/{created['id']}"
    patched = await client.patch(item, json=CHANGE, headers=other.headers)
    assert_problem(patched, 403)
    assert_problem(await client.delete(item, headers=other.headers), 403)


async def test_duplicate_unique_value_is_409(client: AsyncClient, users: UserFactory) -> None:
    user = await writer(users)
    body = await payload(client, users, user)
    await create(client, URL, body, user)
    response = await client.post(URL, json=body, headers=user.headers)
    problem = assert_problem(response, 409, "unique-violation")
    assert ["body", "slug"] in error_locs(problem)


async def test_search(client: AsyncClient, users: UserFactory) -> None:
    user = await writer(users)
    created = await create(client, URL, await payload(client, users, user), user)
    found = await client.get(URL, params={"q": "NAME"}, headers=user.headers)
    assert [row["id"] for row in found.json()["items"]] == [created["id"]]
    missed = await client.get(URL, params={"q": "no such text"}, headers=user.headers)
    assert missed.json()["items"] == []


async def test_documented(client: AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    assert {URL, URL + "/{item_id}"} <= set(spec["paths"])
    [tag] = [tag for tag in spec["tags"] if tag["name"] == "tags"]
    assert tag["description"].startswith("Tags: a name and a unique slug")
    create = spec["paths"][URL]["post"]["requestBody"]["content"]["application/json"]["schema"]
    properties = spec["components"]["schemas"][create["$ref"].rsplit("/", 1)[1]]["properties"]
    assert {name: properties[name]["examples"] for name in FIELDS} == {
        "slug": ["release-notes"],
        "name": ["Release notes"],
    }


async def test_upsert_by_slug(client: AsyncClient, users: UserFactory) -> None:
    user, other = await writer(users), await writer(users)
    url = f"{URL}/by-slug/release-notes"
    created = await client.put(url, json={"name": "Release notes"}, headers=user.headers)
    assert created.status_code == 201, created.text
    replaced = await client.put(url, json={"name": "Releases"}, headers=user.headers)
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["id"] == created.json()["id"]
    assert replaced.json()["name"] == "Releases"
    assert_problem(await client.put(url, json={"name": "Mine"}, headers=other.headers), 403)
    batch = [{"slug": "release-notes", "name": "Notes"}, {"slug": "howto", "name": "How-to"}]
    many = await client.put(f"{URL}/batch", json=batch, headers=user.headers)
    assert many.status_code == 200, many.text
    assert [item["created"] for item in many.json()["items"]] == [False, True]
