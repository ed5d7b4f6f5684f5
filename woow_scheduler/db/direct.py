"""Run a prebuilt Core statement straight on the DBAPI cursor: the worker's two per-fire statements.

SQLAlchemy's execution path (execution context, result wrapping, events) cost more client CPU than
the statement itself on the worker's hot path (measured: about 70 µs of SQLAlchemy against 55 µs of
psycopg per statement, a quarter of a whole execution's client CPU).  For PostgreSQL over psycopg
this module compiles each Core statement once per set of parameter names with SQLAlchemy itself
(same SQL, same casts, same type bind processors) and then hands SQL and parameters to the psycopg
connection under the pooled SQLAlchemy connection.  The statements stay defined in one place, as
Core; any other backend (SQLite in the embedded mode) simply goes through ``Connection.execute``.

Errors are translated exactly as SQLAlchemy would (``sqlalchemy.exc.DBAPIError.instance``), and a
disconnect invalidates the pooled connection, so callers see the same exceptions either way.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection
from sqlalchemy import exc as sa_exc
from sqlalchemy.sql import ClauseElement, Executable, Select
from sqlalchemy.sql.compiler import SQLCompiler


@dataclass(frozen=True)
class DirectResult:
    rowcount: int
    row: tuple[Any, ...] | None  # first returned row (statements with RETURNING), else None


@dataclass(frozen=True)
class _Compiled:
    sql: str
    binds: tuple[tuple[str, str, Callable[[Any], Any] | None, Any, bool], ...]  # key, name, proc, default, required


_COMPILED: dict[tuple[int, str, tuple[str, ...]], _Compiled] = {}


def _compile(conn: Connection, stmt: Executable, keys: tuple[str, ...]) -> _Compiled:
    dialect = conn.dialect
    cache_key = (id(stmt), dialect.name, keys)
    found = _COMPILED.get(cache_key)
    if found is None:
        assert isinstance(stmt, ClauseElement)
        compiled = stmt.compile(dialect=dialect, column_keys=list(keys))
        assert isinstance(compiled, SQLCompiler)
        binds = []
        for bind, name in compiled.bind_names.items():
            proc = bind.type.dialect_impl(dialect).bind_processor(dialect)
            binds.append((bind.key, name, proc, bind.value, bool(bind.required)))
        found = _COMPILED[cache_key] = _Compiled(compiled.string, tuple(binds))
        # the statements handed in are module-level constants: ids stay valid for the process
    return found


def supports_direct(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg"


def execute(conn: Connection, stmt: Executable, params: Mapping[str, Any]) -> DirectResult:
    """Execute ``stmt`` with ``params`` (an autocommit connection: the statement commits itself)."""
    if not supports_direct(conn):
        result = conn.execute(stmt, dict(params))
        row = result.first() if result.returns_rows else None
        return DirectResult(result.rowcount, tuple(row) if row is not None else None)
    rowcount, row, _ = _execute(conn, stmt, params)
    return DirectResult(rowcount, row)


def _execute(conn: Connection, stmt: Executable, params: Mapping[str, Any]) -> tuple[int, Any, Any]:
    compiled = _compile(conn, stmt, tuple(params))
    values: dict[str, Any] = {}
    for key, name, proc, default, required in compiled.binds:
        if key in params:
            value = params[key]
        elif required:
            raise sa_exc.ArgumentError(f"missing value for bind parameter {key!r}")
        else:
            value = default
        try:
            values[name] = proc(value) if proc is not None else value
        except Exception as err:  # as Connection.execute reports a value its type rejects
            raise sa_exc.StatementError(f"({type(err).__name__}) {err}", compiled.sql, None, err) from err
    dbapi_conn = conn.connection.dbapi_connection
    if dbapi_conn is None or not getattr(dbapi_conn, "autocommit", False):
        raise sa_exc.InvalidRequestError("direct statements need an autocommit connection")
    try:
        cursor = dbapi_conn.execute(compiled.sql, values)
        description = cursor.description
        row = cursor.fetchone() if description is not None else None
        return cursor.rowcount, (tuple(row) if row is not None else None), description
    except conn.dialect.loaded_dbapi.Error as err:
        disconnect = bool(conn.dialect.is_disconnect(err, dbapi_conn, None)) or _unusable(dbapi_conn)
        if disconnect:
            conn.invalidate(err)
        raise sa_exc.DBAPIError.instance(
            compiled.sql,
            values,
            err,
            conn.dialect.loaded_dbapi.Error,
            connection_invalidated=disconnect,
            dialect=conn.dialect,
        ) from err


def _unusable(dbapi_conn: Any) -> bool:
    """True when the failed connection can no longer be handed out: closed, or with its protocol state
    unknown (``UNKNOWN``) or still in a command (``ACTIVE``).  A backend terminated under load has
    surfaced as "sending query failed: another command is already in progress", which SQLAlchemy's
    disconnect test does not know; such a connection must be invalidated, not returned to the pool."""
    if getattr(dbapi_conn, "closed", False):
        return True
    info = getattr(dbapi_conn, "info", None)
    status = getattr(getattr(info, "transaction_status", None), "name", None)
    return status in ("UNKNOWN", "ACTIVE")


_ROWS: dict[tuple[int, str], tuple[Any, tuple[Callable[[Any], Any] | None, ...]]] = {}


def _row_shape(
    conn: Connection, stmt: Select[Any], description: Any
) -> tuple[Any, tuple[Callable[[Any], Any] | None, ...]]:
    """A named tuple class for the rows of ``stmt`` and each column's result processor (SQLAlchemy's
    own, for the type the server reported)."""
    dialect = conn.dialect
    key = (id(stmt), dialect.name)
    found = _ROWS.get(key)
    if found is None:
        cols = list(stmt.selected_columns)
        procs = tuple(
            c.type.dialect_impl(dialect).result_processor(dialect, d.type_code)
            for c, d in zip(cols, description, strict=True)
        )
        row_cls = namedtuple("DirectRow", [c.key for c in cols])  # type: ignore[misc]
        found = _ROWS[key] = (row_cls, procs)
    return found


def first(conn: Connection, stmt: Select[Any], params: Mapping[str, Any]) -> Any:
    """The first row of the select ``stmt`` (attribute access by column key, values as Core returns
    them), or ``None``; one round trip, like :func:`execute`."""
    if not supports_direct(conn) or not getattr(conn.connection.dbapi_connection, "autocommit", False):
        return conn.execute(stmt, dict(params)).first()  # inside a transaction: the ordinary path
    _, row, description = _execute(conn, stmt, params)
    if row is None:
        return None
    row_cls, procs = _row_shape(conn, stmt, description)
    return row_cls(*(v if p is None or v is None else p(v) for p, v in zip(procs, row, strict=True)))
