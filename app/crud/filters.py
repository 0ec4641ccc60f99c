"""The filter operators: one table used both to parse the query string and to write the SQL.

`?title__contains=x` names a field and an operator (`eq` when there is no suffix). A filter
that is sent becomes a `Condition` of the list plan: its SQL is built once per shape (for
`isnull`, the state asked for) with bind parameters named by `app.crud.binds`, and each
request supplies the values.

An `__in` list is one bind parameter, so its statement is one shape whatever the list's
length: on PostgreSQL `column = ANY (:values)` with a typed array, elsewhere (SQLite)
`column IN (SELECT value FROM json_each(:values))` with a JSON array of the values as the
column's type stores them. An empty list matches nothing on both.
"""

import json
import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import (
    ColumnElement,
    Enum,
    Float,
    Numeric,
    String,
    any_,
    bindparam,
    func,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeDecorator, TypeEngine

from app.core.errors import Unprocessable
from app.crud import binds
from app.crud.fields import model_type, python_type
from app.crud.relations import Relations
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
        Operator(
            "in",
            "list",
            _any,
            "{field} in a comma-separated list (at most the server's MAX_IN_VALUES values, "
            "100 unless configured)",
        ),
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
    isnull: bool | None = None  # the state an `isnull` filter asks for


def filter_params(
    resource: Resource, relations: Relations | None = None, extra: tuple[str, ...] = ()
) -> dict[str, tuple[str, Operator]]:
    """Query parameter name -> (field, operator) for every allowed filter: the resource's
    filter fields (plus `extra` columns), and what each to-one relation shows
    (`owner.full_name`, `post.published`)."""
    params = {}
    names = list(resource.filter_fields or ())
    names += [name for name in extra if name not in names]
    if relations is not None:
        names += relations.fields
    for name in names:
        kind = field_kind(resource, relations, name)
        for op in OPERATORS.values():
            if op.applies_to(kind):
                params[name if op.name == "eq" else f"{name}__{op.name}"] = (name, op)
    return params


def field_kind(resource: Resource, relations: Relations | None, field: str) -> type:
    """The Python type of a field, or of a to-one relation's (`owner.full_name`)."""
    relation, _, column = field.partition(".")
    if column and relations is not None:
        return model_type(relations.to_one[relation].schema, column)
    return python_type(resource, field)


def sent_condition(param: str, field: str, op: Operator, value: Any) -> Condition:
    return Condition(param, field, op.name, bool(value) if op.value == "flag" else None)


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
        return AnyOf(column, bindparam(name, type_=ValueList(column.type)))
    if op == "isnull":
        return column.is_(None) if condition.isnull else column.is_not(None)
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
        return {name: [as_utc(v) for v in value]}
    if op == "isnull":
        return {}
    if OPERATORS[op].value == "text":
        pattern = escape_like(value)
        return {name: f"{pattern}%" if op == "startswith" else f"%{pattern}%"}
    return {name: as_utc(value)}


# -- `__in`: one bound list ----------------------------------------------------------------

INT64 = range(-(2**63), 2**63)


class ValueList(TypeDecorator[list[Any]]):
    """A list of `item` values bound as one parameter: an array on PostgreSQL, elsewhere a
    JSON array of the values as `item` binds them (SQLite compares them as it stores them)."""

    impl = String
    cache_ok = True

    def __init__(self, item: TypeEngine[Any]) -> None:
        super().__init__()
        self.item = item

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name != "postgresql":
            return dialect.type_descriptor(String())
        return dialect.type_descriptor(ARRAY(_array_element(self.item)))

    def process_bind_param(self, value: list[Any] | None, dialect: Dialect) -> Any:
        if value is None or dialect.name == "postgresql":
            return value  # the array type processes each value
        process = self.item.dialect_impl(dialect).bind_processor(dialect)
        values = [process(item) for item in value] if process else value
        for item in values:
            if isinstance(item, int) and item not in INT64:
                # As the driver does for one value; JSON would turn it into an inexact REAL.
                raise OverflowError("Python int too large to convert to SQLite INTEGER")
        try:
            return json.dumps(values, ensure_ascii=False, default=str, allow_nan=False)
        except ValueError:  # NaN or an infinity (only floats then), which JSON cannot spell
            return "[" + ",".join(_json_float(item) for item in values) + "]"


def _array_element(kind: TypeEngine[Any]) -> TypeEngine[Any]:
    """The type of the array's elements, to which the bind is cast: without the column's
    length or scale, which would cut or round the values (`VARCHAR(200)[]`,
    `NUMERIC(12, 2)[]`) where a scalar filter compares them whole."""
    base = kind
    if isinstance(kind, TypeDecorator):
        if type(kind).process_bind_param is not TypeDecorator.process_bind_param:
            return kind  # its own processing applies to each value
        base = kind.impl_instance
    if isinstance(base, String) and not isinstance(base, Enum):
        return String()
    if isinstance(base, Numeric) and not isinstance(base, Float):
        return Numeric()
    return kind


def _json_float(value: float) -> str:
    """NaN as null (SQLite binds NaN as NULL, equal to nothing); SQLite reads 1e999 as
    infinity."""
    if math.isnan(value):
        return "null"
    if math.isinf(value):
        return "1e999" if value > 0 else "-1e999"
    return repr(value)


class AnyOf(FunctionElement[bool]):
    """`AnyOf(column, values)`: the column equals one of a `ValueList` bind's values.

    Untyped, so that SQLite gets no `= 1` after it (which would keep its index unused).
    """

    inherit_cache = True


@compiles(AnyOf)
def _in_json_array(element: AnyOf, compiler: SQLCompiler, **kw: Any) -> str:
    column, values = element.clauses
    rows = func.json_each(values).table_valued("value")
    return compiler.process(column.in_(select(rows.c.value)), **kw)


@compiles(AnyOf, "postgresql")
def _equals_any(element: AnyOf, compiler: SQLCompiler, **kw: Any) -> str:
    column, values = element.clauses
    return compiler.process(column == any_(values), **kw)
