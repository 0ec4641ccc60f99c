"""Database errors as problems: constraint violations are the client's, outages are 503."""

import logging
import sqlite3
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from psycopg_pool import PoolTimeout
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, OperationalError, StatementError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlmodel import SQLModel

from app.core.errors import field_error, problem_response, unhandled_error_response

RETRY_AFTER_SECONDS = "5"
QUERY_CANCELED = "57014"  # statement_timeout
SQLITE_ERROR = 1  # SQLite's primary result code for a statement it cannot run
SQLITE_INT_OVERFLOW = "Python int too large to convert to SQLite INTEGER"

logger = logging.getLogger(__name__)


def _constraint_columns(name: str | None) -> list[str]:
    if not name:
        return []
    for table in SQLModel.metadata.tables.values():
        for item in (*table.constraints, *table.indexes):
            if getattr(item, "name", None) == name:
                return [column.name for column in getattr(item, "columns", ())]
    return []


def integrity_problem(orig: Any) -> tuple[int, str, str, list[str]]:
    """Status, slug, detail and fields of a constraint violation (the driver's error)."""
    sqlstate = getattr(orig, "sqlstate", None)
    diag = getattr(orig, "diag", None)
    message = str(orig)
    if sqlstate == "23505" or "UNIQUE constraint failed" in message:
        if diag is not None:
            fields = _constraint_columns(diag.constraint_name)
        else:
            failed = message.split("UNIQUE constraint failed:", 1)[-1]
            fields = [part.strip().rsplit(".", 1)[-1] for part in failed.split(",")]
        return 409, "unique-violation", "A record with this value already exists", fields
    if sqlstate == "23503" or "FOREIGN KEY constraint failed" in message:
        fields = _constraint_columns(diag.constraint_name) if diag is not None else []
        return 422, "missing-reference", "A referenced record does not exist", fields
    return 409, "conflict", "The request conflicts with the stored data", []


async def _on_integrity_error(_request: Request, exc: Exception) -> JSONResponse:
    orig = exc.orig if isinstance(exc, IntegrityError) else exc
    status, slug, detail, fields = integrity_problem(orig)
    errors = [field_error(field, detail, slug) for field in fields] or [
        {"loc": ["body"], "msg": detail, "type": slug}
    ]
    return problem_response(status, detail, slug=slug, errors=errors)


def unavailable(detail: str) -> JSONResponse:
    return problem_response(
        503, detail, slug="service-unavailable", headers={"Retry-After": RETRY_AFTER_SECONDS}
    )


async def _on_data_error(_request: Request, exc: Exception) -> JSONResponse:
    # A value the database cannot hold (out of range, bad encoding) that validation let through.
    return _out_of_range()


async def _on_unbindable_value(request: Request, exc: Exception) -> JSONResponse:
    """The driver-side twin of a DataError: a value that cannot even be bound.

    SQLite's driver raises a bare OverflowError for integers past 64 bits (PostgreSQL answers
    DataError), and a bind processor overflows on dates shifted past year 1 or 9999.
    """
    if isinstance(exc, StatementError) and isinstance(exc.orig, OverflowError):
        return _out_of_range()
    if isinstance(exc, OverflowError) and str(exc) == SQLITE_INT_OVERFLOW:
        return _out_of_range()
    return unhandled_error_response(request.scope, exc)


def _out_of_range() -> JSONResponse:
    return problem_response(
        422,
        "A value is out of range for the database",
        slug="validation-error",
        errors=[{"loc": ["body"], "msg": "value out of range", "type": "data-error"}],
    )


def _busy() -> JSONResponse:
    logger.warning("No pooled database connection within DB_POOL_TIMEOUT")
    return unavailable("The database is busy; retry shortly")


def _sqlite_statement_error(orig: BaseException | None) -> bool:
    """SQLite raises OperationalError for statements it cannot run too (no such table, a
    syntax error): a bug to log as one, not an outage to retry."""
    code = getattr(orig, "sqlite_errorcode", None)
    return isinstance(orig, sqlite3.Error) and code is not None and code & 0xFF == SQLITE_ERROR


async def _on_database_error(request: Request, exc: Exception) -> JSONResponse:
    """Outages, statement timeouts and pool exhaustion are 503 + Retry-After, not 500."""
    assert isinstance(exc, DBAPIError | PoolTimeoutError)
    # The ORM borrows connections from the worker's psycopg pool (app/core/database.py):
    # its timeout arrives wrapped in an OperationalError.
    if isinstance(exc, PoolTimeoutError) or isinstance(exc.orig, PoolTimeout):
        return _busy()
    if _sqlite_statement_error(exc.orig):
        return unhandled_error_response(request.scope, exc)
    if getattr(exc.orig, "sqlstate", None) == QUERY_CANCELED:
        logger.warning("Statement timeout on %s %s", request.method, request.url.path)
        return unavailable("The query took too long; retry shortly")
    if isinstance(exc, OperationalError) or exc.connection_invalidated:
        logger.warning("Database unavailable: %s", exc.orig)
        return unavailable("The database is not reachable; retry shortly")
    return unhandled_error_response(request.scope, exc)


async def _on_driver_error(request: Request, exc: Exception) -> JSONResponse:
    """The same mapping for statements run on psycopg directly (app/core/database.py)."""
    if isinstance(exc, psycopg.IntegrityError):
        return await _on_integrity_error(request, exc)
    if isinstance(exc, psycopg.DataError):
        return _out_of_range()
    if isinstance(exc, psycopg.errors.QueryCanceled):
        logger.warning("Statement timeout on %s %s", request.method, request.url.path)
        return unavailable("The query took too long; retry shortly")
    if isinstance(exc, PoolTimeout):
        return _busy()
    if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
        logger.warning("Database unavailable: %s", exc)
        return unavailable("The database is not reachable; retry shortly")
    return unhandled_error_response(request.scope, exc)


def install_database_error_handlers(app: FastAPI) -> None:
    handlers: dict[Any, Any] = {
        IntegrityError: _on_integrity_error,
        DataError: _on_data_error,
        DBAPIError: _on_database_error,
        StatementError: _on_unbindable_value,
        OverflowError: _on_unbindable_value,
        PoolTimeoutError: _on_database_error,
        psycopg.Error: _on_driver_error,
        PoolTimeout: _on_driver_error,
    }
    for exc_class, handler in handlers.items():
        app.add_exception_handler(exc_class, handler)
