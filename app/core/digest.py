"""`ShownDigest`: a 60-bit integer digest of some columns' values, computed by the database.

An ETag built from what a representation shows (an embedded owner's id and name) must change
exactly when those values change, and a conditional write must compare it in SQL. PostgreSQL
digests with its own `md5`; SQLite gets the same function (Python's hashlib) registered on each
connection (`register_sqlite_functions`). The two never meet: a tag is checked where it was made.
0 stands for "no row" (the `present` column is NULL).
"""

import hashlib
from typing import Any

from sqlalchemy import BigInteger, ColumnElement
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

SQLITE_FUNCTION = "shown_digest"
HEX_DIGITS = 15  # 60 bits: a bigint on both databases


class ShownDigest(FunctionElement[int]):
    """`ShownDigest(present, *columns)`: 0 when `present` is NULL, else the digest."""

    type = BigInteger()
    inherit_cache = True
    name = "shown_digest"

    def __init__(self, present: ColumnElement[Any], *columns: ColumnElement[Any]) -> None:
        super().__init__(present, *columns)


def _parts(element: ShownDigest, compiler: SQLCompiler, **kw: Any) -> tuple[str, str]:
    present, *columns = element.clauses
    shown = ", ".join(compiler.process(column, **kw) for column in columns)
    return compiler.process(present, **kw), shown


@compiles(ShownDigest, "postgresql")
def _postgresql(element: ShownDigest, compiler: SQLCompiler, **kw: Any) -> str:
    present, shown = _parts(element, compiler, **kw)
    digest = f"('x' || substr(md5(json_build_array({shown})::text), 1, {HEX_DIGITS}))"
    return f"(CASE WHEN {present} IS NULL THEN 0 ELSE {digest}::bit(60)::bigint END)"


@compiles(ShownDigest, "sqlite")
def _sqlite(element: ShownDigest, compiler: SQLCompiler, **kw: Any) -> str:
    present, shown = _parts(element, compiler, **kw)
    digest = f"{SQLITE_FUNCTION}(json_array({shown}))"
    return f"(CASE WHEN {present} IS NULL THEN 0 ELSE {digest} END)"


def digest_text(text: str) -> int:
    """The same 60-bit digest, of a text made in Python (the rows a to-many relation nests)."""
    return int(hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()[:HEX_DIGITS], 16)


def register_sqlite_functions(connection: Any) -> None:
    """On a new SQLite connection (the DB-API one SQLAlchemy's connect event gives)."""
    connection.create_function(SQLITE_FUNCTION, 1, digest_text, deterministic=True)
