"""The database engine: SQLite or PostgreSQL settings, schema creation, and the base every
aggregate's store methods build on.

Synchronous SQLAlchemy: every call is a short transaction, cheap next to network I/O.
All timestamps are stored and returned as aware UTC datetimes.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import time
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import Table, create_engine, event, insert
from sqlalchemy.engine import Connection, Engine, ExceptionContext, make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, NoSuchModuleError, SQLAlchemyError

from bot.store import schema as t
from bot.store.migrate import MigrationError, prepare

# SQLite's own words for a file that is not (or no longer) a whole database.
_DAMAGED = ("file is not a database", "database disk image is malformed")
# A server that does not answer must not hang a command for minutes.
PG_CONNECT_TIMEOUT_S = 10


class StoreError(Exception):
    """The database cannot be opened or is damaged. Its message is one line: which database (never
    a password), what is wrong and what to do. The CLI exits 3 on it."""


def shown_url(url: str) -> str:
    """The database as an operator may see it: a SQLite path, or scheme://host:port/name without
    user or password."""
    if url.startswith("sqlite"):
        return sqlite_path(url) or ":memory:"
    try:
        parsed = make_url(url)
    except ArgumentError:
        return "DATABASE_URL (not a database URL)"
    port = f":{parsed.port}" if parsed.port else ""
    return f"{parsed.get_backend_name()}://{parsed.host or ''}{port}/{parsed.database or ''}"


def sqlite_path(url: str) -> str:
    return url.split("///", 1)[-1] if "///" in url else ""


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def store_error(url: str, exc: BaseException, *, connecting: bool = False) -> StoreError | None:
    """The StoreError an engine error means, or None when it is an ordinary query error."""
    where, why = shown_url(url), _first_line(exc)
    if url.startswith("sqlite") and any(words in why for words in _DAMAGED):
        return StoreError(f"database {where} is damaged ({why}): restore it from a backup, or move it aside "
                          f"(mv {where} {where}.broken) to start fresh")
    if not connecting:
        return None
    if url.startswith("sqlite"):
        return StoreError(f"cannot open database {where} ({why}): check that its directory exists and is "
                          f"writable, or set DATABASE_URL to another file")
    return StoreError(f"cannot reach database {where} ({why}): check DATABASE_URL and that the server is "
                      f"running and accepts connections")


def _raise_store_error(url: str):
    def handle_error(context: ExceptionContext) -> None:
        if context.is_pre_ping:  # the pool replaces a dropped connection itself
            return
        # No connection yet: the database could not be opened or reached at all.
        error = store_error(url, context.original_exception, connecting=context.connection is None)
        if error is not None:
            raise error from context.original_exception
    return handle_error


def as_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA busy_timeout=30000")
    _use_wal(cur)
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _use_wal(cur) -> None:
    """Switch to WAL. A new database's switch needs it to itself for a moment, and SQLite answers
    "locked" at once instead of waiting, so workers started together try again for a while."""
    deadline = time.monotonic() + 30
    while True:
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _postgres_session_utc(dbapi_conn, _record) -> None:
    """Sessions in UTC whatever the server's TimeZone: timestamps come back in UTC, and a naive
    datetime (if one slips through) means UTC as it does on SQLite."""
    autocommit = dbapi_conn.autocommit
    dbapi_conn.autocommit = True  # a SET inside a later-rolled-back transaction would be undone
    try:
        dbapi_conn.execute("SET TIME ZONE 'UTC'")
    finally:
        dbapi_conn.autocommit = autocommit


def make_engine(url: str) -> Engine:
    """The engine for DATABASE_URL; errors that mean the database is unusable (cannot be opened or
    reached, or is damaged) are raised as StoreError wherever they happen."""
    try:
        engine = _new_engine(url)
    except (ArgumentError, NoSuchModuleError, ImportError, OSError) as exc:
        raise StoreError(f"cannot use database {shown_url(url)} ({_first_line(exc)}): check DATABASE_URL "
                         f"(sqlite:///PATH or postgresql://USER:PASSWORD@HOST/NAME)") from None
    event.listen(engine, "handle_error", _raise_store_error(url))
    return engine


def _new_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        db_path = sqlite_path(url)
        if db_path and db_path != ":memory:":
            Path(db_path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if url.startswith("postgresql://"):
        # psycopg 3 is the driver we ship; plain postgresql:// would ask for psycopg2.
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    wants_timeout = url.startswith("postgresql") and "connect_timeout" not in url
    connect_args = {"connect_timeout": PG_CONNECT_TIMEOUT_S} if wants_timeout else {}
    engine = create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5, connect_args=connect_args)
    if engine.dialect.name == "postgresql":
        event.listen(engine, "connect", _postgres_session_utc)
    return engine


def on_conflict_do_nothing(engine: Engine, table: Table):
    """INSERT … ON CONFLICT DO NOTHING for this database, or None where the dialect has none."""
    # The dialect's module is imported here, not at start-up: create_engine has loaded the one in
    # use, and the other (PostgreSQL's with its drivers' modules) is ~2.4 MiB a bot on SQLite never needs.
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table).on_conflict_do_nothing()
    if engine.dialect.name == "sqlite":
        from sqlalchemy.dialects import sqlite

        return sqlite.insert(table).on_conflict_do_nothing()
    return None


class StoreEngine:
    """The engine and what every aggregate shares: schema creation, duplicate-ignoring inserts."""

    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)
        self.is_postgres = self.engine.dialect.name == "postgresql"
        # Built once per store: building a Core statement costs more CPU than SQLite takes to run it.
        self._insert_ignoring_stmts = {table.name: on_conflict_do_nothing(self.engine, table)
                                       for table in (t.items, t.outbox, t.brief_sources, t.brief_topics)}

    def create(self) -> None:
        """Create or migrate the schema to the current version (StoreError when the database is
        unusable or its schema cannot be brought up to date)."""
        try:
            prepare(self.engine, t.metadata)
        except (MigrationError, SQLAlchemyError) as exc:
            raise StoreError(f"cannot prepare database {shown_url(self.url)} ({_first_line(exc)}): restore it "
                             f"from a backup, or move it aside to start fresh") from None

    def close(self) -> None:
        self.engine.dispose()

    def _insert_ignoring_duplicates(self, c: Connection, table: Table, rows: list[dict]) -> None:
        """INSERT … ON CONFLICT DO NOTHING: no savepoint, so it never splits the caller's transaction
        (with pysqlite a SAVEPOINT that opens a transaction commits on its own release)."""
        if not rows:
            return
        stmt = self._insert_ignoring_stmts[table.name]
        if stmt is None:  # other databases: one savepoint per row
            for row in rows:
                try:
                    with c.begin_nested():
                        c.execute(insert(table).values(**row))
                except IntegrityError:
                    pass
            return
        c.execute(stmt, rows)
