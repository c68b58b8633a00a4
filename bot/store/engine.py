"""The database engine: SQLite or PostgreSQL settings, schema creation, and the base every
aggregate's store methods build on.

Synchronous SQLAlchemy: every call is a short transaction, cheap next to network I/O.
All timestamps are stored and returned as aware UTC datetimes.
"""

from __future__ import annotations

import os
import socket
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import Table, create_engine, event, insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from bot.store import schema as t
from bot.store.migrate import upgrade


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
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


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
    if url.startswith("sqlite"):
        db_path = url.split("///", 1)[-1] if "///" in url else ""
        if db_path and db_path != ":memory:":
            Path(db_path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if url.startswith("postgresql://"):
        # psycopg 3 is the driver we ship; plain postgresql:// would ask for psycopg2.
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    engine = create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)
    if engine.dialect.name == "postgresql":
        event.listen(engine, "connect", _postgres_session_utc)
    return engine


def on_conflict_do_nothing(engine: Engine, table: Table):
    """INSERT … ON CONFLICT DO NOTHING for this database, or None where the dialect has none."""
    if engine.dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    if engine.dialect.name == "sqlite":
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
        """Create or migrate the schema to the current version."""
        upgrade(self.engine)

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
