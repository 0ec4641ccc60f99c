"""What written values must satisfy, checked before and while a write runs."""

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.exc import IntegrityError

from app.core.connections import Connection
from app.core.errors import Unprocessable, field_error


def reject_nul(values: Mapping[str, Any], location: str) -> None:
    """NUL characters never reach the database (PostgreSQL refuses them, SQLite keeps them)."""
    errors = [
        {"loc": [location, name], "msg": "may not contain NUL characters", "type": "nul"}
        for name, value in values.items()
        if "\x00" in (value if isinstance(value, str) else "")
        or (isinstance(value, list) and any("\x00" in str(item) for item in value))
    ]
    if errors:
        raise Unprocessable("Text may not contain NUL characters", errors=errors)


def reject_nulls(table: Table, changes: Mapping[str, Any]) -> None:
    """Explicit nulls for non-nullable columns (an Update schema allows them: all optional)."""
    errors = [
        field_error(name, "may not be null", "null-not-allowed")
        for name, value in changes.items()
        if value is None and not table.c[name].nullable
    ]
    if errors:
        raise Unprocessable("Some fields may not be null", errors=errors)


def missing_reference(field: str, value: Any) -> Unprocessable:
    return Unprocessable(
        f"{field} {value} does not exist",
        slug="missing-reference",
        errors=[field_error(field, "does not exist", "missing-reference")],
    )


async def name_missing_reference(
    connection: Connection, table: Table, values: Mapping[str, Any], error: IntegrityError
) -> None:
    """Raise a 422 naming the missing reference behind a SQLite foreign-key failure.

    PostgreSQL names the violated constraint (mapped in app/core/db_errors.py); SQLite only
    says "FOREIGN KEY constraint failed", so look up which reference is missing. Returns
    when the error is something else.
    """
    if "FOREIGN KEY constraint failed" not in str(error.orig):
        return
    for column in table.c:
        value = values.get(column.name)
        for key in column.foreign_keys if value is not None else ():
            target = key.column
            if await connection.row(select(target).where(target == value), {}) is None:
                raise missing_reference(column.name, value) from None
