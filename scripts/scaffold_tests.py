"""The test module `scripts/new_resource.py` writes beside a new resource.

It is assembled from the blocks in `scripts/scaffold_test_blocks.py` ($names are filled in),
chosen by the resource's fields and access rules; ruff formats the result.
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
from scripts.scaffold_test_blocks import (
    ANONYMOUS_WRITES,
    BULK,
    DELETE_AND_422,
    DOCUMENTED,
    EXPAND,
    HEAD,
    OWNER_READS,
    OWNER_WRITES,
    PRIVATE_READS,
    PUBLIC_READS,
    REQUIRED,
    SEARCH,
    SUPERUSER_WRITES,
    SYNC,
    UNIQUE,
    UPDATE,
    UPSERT,
    USER_REFERENCE,
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
    blocks.append(SYNC)
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
