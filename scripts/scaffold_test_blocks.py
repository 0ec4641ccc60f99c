"""The blocks of the test module `scripts/new_resource.py` writes: `string.Template`s whose
$names `scripts/scaffold_tests.py` fills in, chosen by the resource's fields and access rules."""

HEAD = '''\
"""The generated $plural resource over HTTP: CRUD, validation and access rules.

Written by:

$command

Grow it with the resource.
"""

from collections.abc import Callable, Iterable
$imports
from typing import Any

from httpx import AsyncClient

from tests.crud.formats import assert_problem, error_locs
from tests.factories import TestUser, UserFactory

URL = "$url"
FIELDS: dict[str, Any] = $fields
CHANGE: dict[str, Any] = $change
PARSE: dict[str, Callable[[Any], Any]] = $parsers


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
$steps
    return $payload


async def writer(users: UserFactory) -> TestUser:
    return await users.create($superuser)


async def test_create_get_and_list(client: AsyncClient, users: UserFactory) -> None:
    user = await writer(users)
    body = await payload(client, users, user)
    created = await create(client, URL, body, user)
    assert parsed(created, body) == parsed(body, body)
    assert created.keys() >= {"id", "created_at", "updated_at"}$owner_check
    read = await client.get(f"{URL}/{created['id']}", headers=user.headers)
    assert read.status_code == 200, read.text
    assert read.json() == created
    listed = await client.get(URL, headers=user.headers)
    assert listed.status_code == 200, listed.text
    assert [row["id"] for row in listed.json()["items"]] == [created["id"]]
    assert listed.json()["total"] == 1
'''

UPDATE = """
async def test_update(client: AsyncClient, users: UserFactory) -> None:
    user = await writer(users)
    created = await create(client, URL, await payload(client, users, user), user)
    item = f"{URL}/{created['id']}"
    response = await client.patch(item, json=CHANGE, headers=user.headers)
    assert response.status_code == 200, response.text
    assert parsed(response.json(), CHANGE) == parsed(CHANGE, CHANGE)
    read = await client.get(item, headers=user.headers)
    assert parsed(read.json(), CHANGE) == parsed(CHANGE, CHANGE)
"""

DELETE_AND_422 = """
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
"""

BULK = """
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
"""

SYNC = """
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
"""

UPSERT = """
async def test_upsert_by_$key(client: AsyncClient, users: UserFactory) -> None:
    from urllib.parse import quote

    user = await writer(users)
    body = await payload(client, users, user)
    url = f"{URL}/by-$path/{quote(str(body['$key']), safe='')}"
    created = await client.put(url, json=body, headers=user.headers)
    assert created.status_code == 201, created.text
    replaced = await client.put(url, json=body, headers=user.headers)
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["id"] == created.json()["id"]
"""

REQUIRED = """
async def test_missing_required_field_is_422(
    client: AsyncClient, users: UserFactory
) -> None:
    user = await writer(users)
    body = await payload(client, users, user)
    del body["$name"]
    response = await client.post(URL, json=body, headers=user.headers)
    assert ["body", "$name"] in error_locs(assert_problem(response, 422))
"""

ANONYMOUS_WRITES = """
async def test_anonymous_writes_are_401(client: AsyncClient, users: UserFactory) -> None:
    user = await writer(users)
    body = await payload(client, users, user)
    assert_problem(await client.post(URL, json=body), 401)
    created = await create(client, URL, body, user)
    item = f"{URL}/{created['id']}"
    assert_problem(await client.patch(item, json=CHANGE), 401)
    assert_problem(await client.delete(item), 401)
"""

PUBLIC_READS = """
async def test_anonymous_reads(client: AsyncClient, users: UserFactory) -> None:
    user = await writer(users)
    created = await create(client, URL, await payload(client, users, user), user)
    assert (await client.get(f"{URL}/{created['id']}")).status_code == 200
    assert (await client.get(URL)).json()["total"] == 1
"""

PRIVATE_READS = """
async def test_anonymous_reads_are_401(client: AsyncClient) -> None:
    assert_problem(await client.get(URL), 401)
"""

OWNER_READS = """
async def test_others_do_not_see_it(client: AsyncClient, users: UserFactory) -> None:
    user = await writer(users)
    other = await users.create()
    created = await create(client, URL, await payload(client, users, user), user)
    assert_problem(await client.get(f"{URL}/{created['id']}", headers=other.headers), 404)
    assert (await client.get(URL, headers=other.headers)).json()["total"] == 0
"""

OWNER_WRITES = """
async def test_only_the_owner_writes(client: AsyncClient, users: UserFactory) -> None:
    user = await writer(users)
    other = await users.create()
    created = await create(client, URL, await payload(client, users, user), user)
    item = f"{URL}/{created['id']}"
    patched = await client.patch(item, json=CHANGE, headers=other.headers)
    assert_problem(patched, $refused)
    assert_problem(await client.delete(item, headers=other.headers), $refused)
"""

SUPERUSER_WRITES = """
async def test_only_superusers_write(client: AsyncClient, users: UserFactory) -> None:
    admin, user = await writer(users), await users.create()
    body = await payload(client, users, admin)
    assert_problem(await client.post(URL, json=body, headers=user.headers), 403)
    created = await create(client, URL, body, admin)
    item = f"{URL}/{created['id']}"
    assert_problem(await client.patch(item, json=CHANGE, headers=user.headers), $refused)
    assert_problem(await client.put(item, json=body, headers=user.headers), $refused)
    assert_problem(await client.delete(item, headers=user.headers), $refused)
    assert (await client.get(item, headers=admin.headers)).json() == created
    assert (await client.get(URL, headers=admin.headers)).json()["total"] == 1
"""

USER_REFERENCE = """
async def test_user_ids_cannot_be_probed_through_$name(
    client: AsyncClient, users: UserFactory
) -> None:
    \"\"\"Superusers, who may list users, learn that a user is missing; anyone else is
    refused alike for an existing and a missing user.\"\"\"
    admin, user = await writer(users), await users.create()
    body = await payload(client, users, admin)
    missing = 2**31 - 1  # the largest INTEGER: no such user
    unknown = await client.post(URL, json={**body, "$name": missing}, headers=admin.headers)
    assert_problem(unknown, 422, "missing-reference")
    for value in (admin.id, missing):
        refused = await client.post(URL, json={**body, "$name": value}, headers=user.headers)
        assert_problem(refused, 403)
    item = f"{URL}/{(await create(client, URL, body, admin))['id']}"
    for value in (admin.id, missing):
        patched = await client.patch(item, json={"$name": value}, headers=user.headers)
        assert_problem(patched, $refused)
"""

UNIQUE = """
async def test_duplicate_unique_value_is_409(client: AsyncClient, users: UserFactory) -> None:
    user = await writer(users)
    body = await payload(client, users, user)
    await create(client, URL, body, user)
    response = await client.post(URL, json=body, headers=user.headers)
    problem = assert_problem(response, 409, "unique-violation")
    assert ["body", "$name"] in error_locs(problem)
"""

SEARCH = """
async def test_search(client: AsyncClient, users: UserFactory) -> None:
    user = await writer(users)
    created = await create(client, URL, await payload(client, users, user), user)
    found = await client.get(URL, params={"q": $needle}, headers=user.headers)
    assert [row["id"] for row in found.json()["items"]] == [created["id"]]
    missed = await client.get(URL, params={"q": "no such text"}, headers=user.headers)
    assert missed.json()["items"] == []
"""

EXPAND = """
async def test_expand_$relation(client: AsyncClient, users: UserFactory) -> None:
    user = await writer(users)
    created = await create(client, URL, await payload(client, users, user), user)
    for url in (f"{URL}/{created['id']}", URL):
        response = await client.get(url, params={"expand": "$relation"}, headers=user.headers)
        assert response.status_code == 200, response.text
        body = response.json()
        nested = body["$relation"] if "id" in body else body["items"][0]["$relation"]
        assert nested["id"] == created["$field"]
"""

DOCUMENTED = """
async def test_documented(client: AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    assert {URL, URL + "/{item_id}"} <= set(spec["paths"])
    [tag] = [tag for tag in spec["tags"] if tag["name"] == "$plural"]
    assert tag["description"].startswith("$described: each has")
    create = spec["paths"][URL]["post"]["requestBody"]["content"]["application/json"]["schema"]
    properties = spec["components"]["schemas"][create["$$ref"].rsplit("/", 1)[1]]["properties"]
    assert {name: properties[name]["examples"] for name in FIELDS} == $examples
"""
