"""The filter operators: one table used both to parse the query string and to write the SQL.

`?title__contains=x` names a field and an operator (`eq` when there is no suffix). A filter
that is sent becomes a `Condition` of the list plan: its SQL is built once per shape (for
`in`, the number of values; for `isnull`, the state asked for) with bind parameters named
by `app.crud.binds`, and each request supplies the values.
"""

import operator
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import ColumnElement, String, bindparam, false

from app.core.errors import Unprocessable
from app.crud import binds
from app.crud.fields import python_type
from app.crud.resource import Resource

ORDERED_TYPES = (int, float, Decimal, datetime, date, str)
# What the query value is: one value of the field's type, a list of them, a flag, or text.
ValueKind = Literal["scalar", "list", "flag", "text"]


@dataclass(frozen=True)
class Operator:
    name: str
    value: ValueKind
    applies_to: Callable[[type], bool]
    describe: str  # with `{field}`


def _any(kind: type) -> bool:
    return True


def _ordered(kind: type) -> bool:
    return issubclass(kind, ORDERED_TYPES) and kind is not bool


def _text(kind: type) -> bool:
    return kind is str


OPERATORS = {
    op.name: op
    for op in (
        Operator("eq", "scalar", _any, "{field} eq"),
        Operator("ne", "scalar", _any, "{field} ne"),
        Operator("lt", "scalar", _ordered, "{field} lt"),
        Operator("lte", "scalar", _ordered, "{field} lte"),
        Operator("gt", "scalar", _ordered, "{field} gt"),
        Operator("gte", "scalar", _ordered, "{field} gte"),
        Operator("in", "list", _any, "{field} in a comma-separated list"),
        Operator("isnull", "flag", _any, "{field} is (not) null"),
        Operator("contains", "text", _text, "{field} contains"),
        Operator("startswith", "text", _text, "{field} startswith"),
        Operator("icontains", "text", _text, "{field} icontains"),
    )
}
COMPARISONS: dict[str, Callable[[Any, Any], ColumnElement[bool]]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "lt": operator.lt,
    "lte": operator.le,
    "gt": operator.gt,
    "gte": operator.ge,
}


@dataclass(frozen=True)
class Condition:
    """A filter as it shapes the SQL: which parameter, and the shape of its value."""

    param: str
    field: str
    op: str
    arity: int | bool | None = None  # values of an `in` list; the state an `isnull` asks


def filter_params(resource: Resource) -> dict[str, tuple[str, Operator]]:
    """Query parameter name -> (field, operator) for every allowed filter."""
    params = {}
    for name in resource.filter_fields or ():
        kind = python_type(resource, name)
        for op in OPERATORS.values():
            if op.applies_to(kind):
                params[name if op.name == "eq" else f"{name}__{op.name}"] = (name, op)
    return params


def sent_condition(param: str, field: str, op: Operator, value: Any) -> Condition:
    arity = len(value) if op.value == "list" else bool(value) if op.value == "flag" else None
    return Condition(param, field, op.name, arity)


def escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def as_utc(value: Any) -> Any:
    """Filter datetimes in UTC; naive ones are taken as UTC."""
    if not isinstance(value, datetime):
        return value
    try:
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    except OverflowError:
        raise Unprocessable(
            "A datetime filter is out of range in UTC",
            errors=[{"loc": ["query"], "msg": "datetime out of range", "type": "value_error"}],
        ) from None


def condition_sql(column: ColumnElement[Any], condition: Condition) -> ColumnElement[bool]:
    name, op = binds.filter_value(condition.param), condition.op
    if op == "in":
        if not condition.arity:  # an empty list matches nothing
            return false()
        values = range(int(condition.arity))
        return column.in_(
            [bindparam(binds.filter_value(condition.param, i), type_=column.type) for i in values]
        )
    if op == "isnull":
        return column.is_(None) if condition.arity else column.is_not(None)
    if OPERATORS[op].value == "text":
        pattern = bindparam(name, type_=String())
        if op == "icontains":
            return column.ilike(pattern, escape="\\")
        return column.like(pattern, escape="\\")
    return COMPARISONS[op](column, bindparam(name, type_=column.type))


def condition_values(condition: Condition, value: Any) -> dict[str, Any]:
    """The bind values of a sent filter."""
    name, op = binds.filter_value(condition.param), condition.op
    if op == "in":
        return {binds.filter_value(condition.param, i): as_utc(v) for i, v in enumerate(value)}
    if op == "isnull":
        return {}
    if OPERATORS[op].value == "text":
        pattern = escape_like(value)
        return {name: f"{pattern}%" if op == "startswith" else f"%{pattern}%"}
    return {name: as_utc(value)}
