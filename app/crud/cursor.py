"""Opaque, signed keyset cursors: the last row's sort values, bound to one query shape."""

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from app.core.errors import Unprocessable
from app.crud.signed import InvalidToken, seal, unseal

PURPOSE = "cursor"


class InvalidCursor(ValueError):
    pass


def query_fingerprint(resource: str, params: Mapping[str, Any], scope: Mapping[str, Any]) -> str:
    """What a cursor is valid for: resource, sort, filters, search, scope (not the position,
    nor what each row nests)."""
    shape = {
        key: value
        for key, value in params.items()
        if key not in ("limit", "offset", "cursor", "expand", "fields") and value is not None
    }
    text = json.dumps([resource, shape, dict(scope)], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def encode_cursor(values: Sequence[Any], fingerprint: str, secret: str) -> str:
    encoded = [v.isoformat() if isinstance(v, date) else v for v in values]
    return seal([fingerprint, encoded], secret, PURPOSE)


def decode_cursor(cursor: str, fingerprint: str, secret: str, kinds: Sequence[type]) -> list[Any]:
    """The sort values a cursor carries, typed like the sort columns; 422 if it is not ours."""
    try:
        return _decode(cursor, fingerprint, secret, kinds)
    except (InvalidCursor, ValueError) as error:  # ValueError: a value of the wrong type
        message = str(error) if isinstance(error, InvalidCursor) else "the cursor is not valid"
        raise Unprocessable(
            message,
            slug="invalid-cursor",
            errors=[{"loc": ["query", "cursor"], "msg": str(error), "type": "cursor"}],
        ) from None


def _decode(cursor: str, fingerprint: str, secret: str, kinds: Sequence[type]) -> list[Any]:
    try:
        made_for, values = unseal(cursor, secret, PURPOSE)
    except (InvalidToken, TypeError, ValueError):
        raise InvalidCursor("the cursor is not valid") from None
    if made_for != fingerprint:
        raise InvalidCursor("the cursor was made for another sort or filter")
    if len(values) != len(kinds):
        raise InvalidCursor("the cursor is not valid")
    return [_typed(value, kind) for value, kind in zip(values, kinds, strict=True)]


def _typed(value: Any, kind: type) -> Any:
    if value is None:
        return None
    if kind is datetime:
        return datetime.fromisoformat(value)
    if kind is date:
        return date.fromisoformat(value)
    if kind is Decimal:
        return Decimal(value)
    return value
