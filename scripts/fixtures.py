"""`--from FILE.json`: users and records of any registered resource, loaded all or nothing.

The file maps section names (`users` and the plural of any registered resource) to lists of
records. Keys starting with `_` are reserved: `_key` names a record within the file, `_owner`
gives a record's owner (a users `_key`, or the email of an existing user) and `_superuser`
makes a user a superuser. A foreign-key field holding a string refers to the record with that
`_key`; an integer is an existing database id. Every other field goes through the resource's
Create schema, as it would over HTTP. The README's "Seeding" section shows an example.
"""

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Column, Table, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlmodel import SQLModel, col

from app.core.security import hash_password
from app.crud.resource import registry, table_of
from app.models.user import User, UserCreate

USERS = "users"


class FixtureError(Exception):
    """A bad file or record; the message names the file, the record and the field."""


@dataclass(frozen=True)
class Section:
    name: str
    table: type[SQLModel]
    create: type[SQLModel]
    owner_field: str | None
    reserved: tuple[str, ...]

    @property
    def sa_table(self) -> Table:
        return table_of(self.table)


def known_sections() -> dict[str, Section]:
    sections = {USERS: Section(USERS, User, UserCreate, None, ("_key", "_superuser"))}
    for resource in registry:
        reserved = ("_key", "_owner") if resource.owner_field else ("_key",)
        sections[resource.plural] = Section(
            resource.plural, resource.table, resource.create, resource.owner_field, reserved
        )
    return sections


def describe(error: ValidationError) -> list[tuple[str, str]]:
    return [(".".join(str(part) for part in item["loc"]), item["msg"]) for item in error.errors()]


class Loader:
    """Inserts the records of one file on one connection (the caller's transaction)."""

    def __init__(self, connection: AsyncConnection, path: Path, rounds: int) -> None:
        self.connection = connection
        self.path = path
        self.rounds = rounds
        self.keys: dict[str, dict[str, int]] = {}  # table name -> _key -> id
        self.hashes: dict[str, str] = {}

    def fail(self, where: str, field: str, message: str) -> FixtureError:
        return FixtureError(f"{self.path}: {where}: {field}: {message}")

    async def load(self, document: Any) -> dict[str, int]:
        if not isinstance(document, dict):
            raise FixtureError(f"{self.path}: expected an object of sections, like {{'users': []}}")
        sections = known_sections()
        unknown = sorted(set(document) - set(sections))
        if unknown:
            raise FixtureError(
                f"{self.path}: unknown section(s) {', '.join(unknown)}; "
                f"known: {', '.join(sections)}"
            )
        order = {table.name: index for index, table in enumerate(SQLModel.metadata.sorted_tables)}
        chosen = sorted((sections[name] for name in document), key=lambda s: order[s.sa_table.name])
        counts = {}
        for section in chosen:
            records = document[section.name]
            if not isinstance(records, list):
                raise FixtureError(f"{self.path}: {section.name}: expected a list of records")
            for position, record in enumerate(records):
                await self.record(section, position, record)
            counts[section.name] = len(records)
        return counts

    async def record(self, section: Section, position: int, record: Any) -> None:
        where = f"{section.name}[{position}]"
        if not isinstance(record, dict):
            raise FixtureError(f"{self.path}: {where}: expected an object")
        key = record.get("_key")
        if key is not None:
            where += f" (_key {key!r})"
            if not isinstance(key, str) or not key:
                raise self.fail(where, "_key", "must be a non-empty string")
            if key in self.keys.get(section.sa_table.name, {}):
                raise self.fail(where, "_key", f"{key!r} is used twice in {section.name}")
        for name in record:
            if name.startswith("_") and name not in section.reserved:
                allowed = ", ".join(section.reserved)
                raise self.fail(where, name, f"unknown reserved key (allowed here: {allowed})")
        fields = {name: value for name, value in record.items() if not name.startswith("_")}
        table = section.sa_table
        for name, value in fields.items():
            column = table.c.get(name)
            if column is not None and column.foreign_keys:
                fields[name] = await self.reference(where, name, column, value)
        try:
            data = section.create.model_validate(fields)
        except ValidationError as error:
            problems = "; ".join(f"{field}: {msg}" for field, msg in describe(error))
            raise FixtureError(f"{self.path}: {where}: {problems}") from None
        if section.name == USERS:
            row = await self.user_row(where, data, record.get("_superuser", False))
        else:
            row = await self.resource_row(where, section, data, record.get("_owner"))
        if isinstance(row, int):  # an existing user, reused
            new_id = row
        else:
            try:
                result = await self.connection.execute(
                    insert(table).values(row).returning(table.c.id)
                )
            except IntegrityError as error:
                raise FixtureError(
                    f"{self.path}: {where}: the database refused it: {error.orig}"
                ) from None
            new_id = result.scalar_one()
        if key is not None:
            self.keys.setdefault(table.name, {})[key] = new_id

    async def reference(self, where: str, field: str, column: Column[Any], value: Any) -> Any:
        """A `_key` string -> the id inserted for it; an integer id must exist."""
        target = next(iter(column.foreign_keys)).column
        if isinstance(value, str):
            ids = self.keys.get(target.table.name, {})
            if value not in ids:
                raise self.fail(
                    where, field, f"no record with _key {value!r} in {target.table.name} before it"
                )
            return ids[value]
        if isinstance(value, int) and not isinstance(value, bool):
            found = await self.connection.execute(select(target).where(target == value))
            if found.first() is None:
                raise self.fail(where, field, f"no {target.table.name} row with id {value}")
        return value

    async def user_row(self, where: str, data: Any, superuser: Any) -> dict[str, Any] | int:
        if not isinstance(superuser, bool):
            raise self.fail(where, "_superuser", "must be true or false")
        found = await self.connection.execute(select(col(User.id)).where(User.email == data.email))
        existing = found.scalar_one_or_none()
        if existing is not None:
            return int(existing)
        if data.password not in self.hashes:
            self.hashes[data.password] = await hash_password(data.password, self.rounds)
        update = {"hashed_password": self.hashes[data.password], "is_superuser": superuser}
        return User.model_validate(data, update=update).model_dump(exclude={"id"})

    async def resource_row(
        self, where: str, section: Section, data: Any, owner: Any
    ) -> dict[str, Any]:
        update = {}
        if section.owner_field is not None:
            update[section.owner_field] = await self.owner(where, owner)
        # The table model fills the server-side fields: timestamps, version, counters.
        row = section.table.model_validate(data, update=update)
        return row.model_dump(exclude={"id"})

    async def owner(self, where: str, owner: Any) -> int:
        if owner is None:
            raise self.fail(where, "_owner", "required: a users _key or an existing user's email")
        if isinstance(owner, str) and owner in self.keys.get(USERS, {}):
            return self.keys[USERS][owner]
        if isinstance(owner, str) and "@" in owner:
            found = await self.connection.execute(
                select(col(User.id)).where(col(User.email) == owner.lower())
            )
            user_id = found.scalar_one_or_none()
            if user_id is not None:
                return int(user_id)
        raise self.fail(where, "_owner", f"{owner!r} is neither a users _key nor a user's email")


def read_fixture(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise FixtureError(f"{path}: cannot read it: {error}") from None
    except json.JSONDecodeError as error:
        raise FixtureError(f"{path}: line {error.lineno}: not valid JSON: {error.msg}") from None


async def load_fixtures(engine: AsyncEngine, path: Path, rounds: int) -> dict[str, int]:
    """Load `path` in one transaction; a FixtureError rolls all of it back."""
    document = await asyncio.to_thread(read_fixture, path)
    async with engine.begin() as connection:
        return await Loader(connection, path, rounds).load(document)
