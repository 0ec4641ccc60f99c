"""The test module `scripts/new_resource.py` writes beside a new resource.

It is assembled from the blocks below ($names are filled in), chosen by the resource's fields
and access rules; ruff formats the result.
"""

from string import Template
from typing import Any

from sqlmodel import SQLModel

from app.crud.docs import words
from app.crud.resource import Read, Resource, Write
from scripts.scaffold import (
    DEFAULT_MAX_LENGTH,
    USERS_TABLE,
    Code,
    FieldSpec,
    ResourceSpec,
    SpecError,
    command_lines,
    example,
    literal,
    relation_name,
)

SAMPLES: dict[str, tuple[Any, Any]] = {  # a value and a different one, as JSON
    "int": (7, 8),
    "float": (2.5, 3.75),
    "bool": (True, False),
    "date": ("2024-05-17", "2025-01-31"),
    "datetime": ("2024-05-17T12:30:00Z", "2025-01-31T08:00:00+02:00"),
    "decimal": ("12.50", "99.99"),
    "uuid": ("0b6b1a5e-8f0c-4c1e-9a3c-2f6d5e4b3a21", "6f1c2d3e-4b5a-4697-8877-665544332211"),
}
PARSERS = {"datetime": "datetime.fromisoformat", "decimal": "Decimal"}

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


def sample(spec: FieldSpec, variant: int = 0) -> Any:
    if spec.kind in DEFAULT_MAX_LENGTH:
        text = ("Sample " if variant == 0 else "Changed ") + spec.name.replace("_", " ")
        return text[: spec.max_length]
    return SAMPLES[spec.kind][variant]


def schema_sample(schema: type[SQLModel], table: Any) -> dict[str, Any]:
    """The required fields of an existing Create schema; a reference holds its target table."""
    body: dict[str, Any] = {}
    for name, info in schema.model_fields.items():
        if not info.is_required():
            continue
        column = table.c.get(name)
        if column is not None and column.foreign_keys:
            body[name] = next(iter(column.foreign_keys)).column.table.name
            continue
        limits = {type(item).__name__: item for item in info.metadata}
        if info.annotation is str:
            text = f"Sample {name}"[: getattr(limits.get("MaxLen"), "max_length", None)]
            body[name] = text.ljust(getattr(limits.get("MinLen"), "min_length", 0), "x")
        elif info.annotation is int:
            body[name] = max(1, getattr(limits.get("Ge"), "ge", 1))
        elif info.annotation in (bool, float):
            body[name] = info.annotation(1)
        else:
            raise SpecError(f"cannot make up a {schema.__name__}.{name} for the tests")
    return body


class Parents:
    """The statements creating the records a payload refers to, parents first.

    `user` (the payload's argument) creates them, but a superuser makes the records of a
    resource only superusers write when `user` is not one.
    """

    def __init__(self, resources: dict[str, Resource], superuser: bool) -> None:
        self.resources = resources
        self.superuser = superuser
        self.steps: list[str] = []
        self.made: set[str] = set()
        self.admin = False  # whether the steps make one

    @property
    def statements(self) -> list[str]:
        made = ["    admin = await users.create(superuser=True)"] if self.admin else []
        return made + self.steps

    def reference(self, table: str) -> Code:
        """Code for the id of a record of `table`, created once."""
        if table == USERS_TABLE:
            return Code("user.id")
        resource = self.resources[table]
        variable = resource.name.lower()
        if table not in self.made:
            self.made.add(table)
            body = schema_sample(resource.create, resource.sa_table)
            for name, value in body.items():
                column = resource.sa_table.c.get(name)
                if column is not None and column.foreign_keys:
                    body[name] = self.reference(value)
            url = f"/api/v1/{resource.plural}"
            creator = "user"
            if resource.write is Write.SUPERUSER and not self.superuser:
                creator, self.admin = "admin", True
            self.steps.append(
                f'    {variable} = await create(client, "{url}", {literal(body)}, {creator})'
            )
        return Code(f'{variable}["id"]')


def render_tests(spec: ResourceSpec, resources: dict[str, Resource]) -> str:
    """The test module; `resources` maps table names to the registered resources."""
    scalars = [f for f in spec.fields if f.kind != "fk"]
    parents = Parents(resources, superuser=spec.write is Write.SUPERUSER)
    refs = {
        f.name: parents.reference(f.target.table)
        for f in spec.fields
        if f.kind == "fk" and f.target
    }
    parsers = {f.name: PARSERS[f.kind] for f in scalars if f.kind in PARSERS}
    imports = []
    if "datetime.fromisoformat" in parsers.values():
        imports.append("from datetime import datetime")
    if "Decimal" in parsers.values():
        imports.append("from decimal import Decimal")
    fields = {f.name: sample(f) for f in scalars}
    payload = "dict(FIELDS)"
    if refs:
        payload = "{**FIELDS, " + ", ".join(f"{k!r}: {v}" for k, v in refs.items()) + "}"
    blocks = [
        Template(HEAD).substitute(
            plural=spec.plural,
            command="\n".join(command_lines(spec)),
            imports="\n".join(imports),
            url=f"/api/v1/{spec.plural}",
            fields=literal(fields),
            change=literal({scalars[0].name: sample(scalars[0], 1)} if scalars else {}),
            parsers="{" + ", ".join(f"{k!r}: {v}" for k, v in parsers.items()) + "}",
            steps="\n".join(parents.statements),
            payload=payload,
            superuser="superuser=True" if spec.write is Write.SUPERUSER else "",
            owner_check='\n    assert created["owner_id"] == user.id' if spec.owner else "",
        )
    ]
    if scalars:
        blocks.append(UPDATE)
    blocks.append(DELETE_AND_422)
    blocks.append(BULK)
    if spec.upsert_key:
        path = spec.upsert_key.replace("_", "-")
        blocks.append(Template(UPSERT).substitute(key=spec.upsert_key, path=path))
    required = [f.name for f in spec.fields if not f.optional]
    if required:
        blocks.append(Template(REQUIRED).substitute(name=required[0]))
    blocks.append(ANONYMOUS_WRITES)
    blocks.append(PUBLIC_READS if spec.read is Read.PUBLIC else PRIVATE_READS)
    if spec.read is Read.OWNER:
        blocks.append(OWNER_READS)
    refused = 404 if spec.read is Read.OWNER else 403  # a row the caller cannot see: not found
    if spec.write is Write.OWNER:
        blocks.append(Template(OWNER_WRITES).substitute(refused=refused))
    if spec.write is Write.SUPERUSER:
        blocks.append(Template(SUPERUSER_WRITES).substitute(refused=refused))
    if spec.user_references:  # the scaffold allows them on superuser-written resources only
        name = spec.user_references[0]
        blocks.append(Template(USER_REFERENCE).substitute(name=name, refused=refused))
    uniques = [f.name for f in spec.fields if f.unique]
    if uniques:
        blocks.append(Template(UNIQUE).substitute(name=uniques[0]))
    if spec.search:  # upper case: the search ignores case
        needle = str(sample(spec.by_name[spec.search[0]])).split()[-1].upper()
        blocks.append(Template(SEARCH).substitute(needle=repr(needle)))
    for reference in (f for f in spec.fields if f.kind == "fk"):
        blocks.append(
            Template(EXPAND).substitute(relation=relation_name(reference), field=reference.name)
        )
    examples = {f.name: [example(f)] for f in scalars}
    described = words(spec.table).capitalize()
    blocks.append(
        Template(DOCUMENTED).substitute(
            plural=spec.plural, described=described, examples=literal(examples)
        )
    )
    return "\n\n\n".join(block.strip("\n") for block in blocks) + "\n"
