"""Schema migrations (Alembic), run in-process at start-up by `Store.create()`; every function
here needs only an engine.

No alembic.ini is needed: the Alembic config is built here, pointing at the migrations
shipped inside the package (bot/store/migrations). `upgrade()`:

- brings an empty database to the newest revision;
- adopts a database made before migrations existed (tables present, no alembic_version
  table): it is stamped with the baseline revision, whose schema it has, then upgraded;
- is safe when several workers start at once: the whole upgrade runs in one transaction
  that first takes a lock (PostgreSQL: a transaction-scoped advisory lock; SQLite:
  BEGIN IMMEDIATE, the database write lock). The second worker waits, then finds the
  schema at head and does nothing.
"""

from __future__ import annotations

import ast
import re
import threading
import zlib
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from sqlalchemy import Column, MetaData, PrimaryKeyConstraint, String, Table, inspect, text
from sqlalchemy.engine import Connection, Engine

if TYPE_CHECKING:  # Alembic (~10 MiB) is imported only by a start that runs a migration
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# The revision whose schema equals what `metadata.create_all` made before Alembic was adopted.
BASELINE_REVISION = "0001"
# Any fixed 64-bit key names "the briefbot schema migration" for pg_advisory_xact_lock.
PG_MIGRATION_LOCK_KEY = zlib.crc32(b"briefbot:schema-migration")
# A table every pre-Alembic briefbot database has.
_SENTINEL_TABLE = "feeds"
# Alembic keeps the running migration context in module globals: one run per process at a time.
_ALEMBIC_IN_PROCESS = threading.Lock()


class MigrationError(RuntimeError):
    """The database schema could not be brought to the wanted revision."""


def alembic_config(connection: Connection | None = None, script_location: str | Path | None = None) -> Config:
    """An Alembic Config built in code; `connection` is handed to env.py (see bot/store/migrations/env.py)."""
    from alembic.config import Config

    cfg = Config()
    location = str(script_location or MIGRATIONS_DIR)
    # ConfigParser interpolates '%': escape it so any path works.
    cfg.set_main_option("script_location", location.replace("%", "%%"))
    cfg.set_main_option("path_separator", "os")
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


# `revision = "0002"` / `down_revision = "0001"` (or a tuple, for a merge) in a revision file.
_REVISION_LINE = re.compile(r"^(revision|down_revision)\s*(?::[^=]*)?=\s*(.+?)\s*$", re.MULTILINE)


def _quick_heads(location: str) -> tuple[str, ...] | None:
    """The heads read straight from the revision files' assignments, without importing Alembic;
    None when a file is not in the plain form Alembic's template writes (then Alembic decides)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in sorted((Path(location) / "versions").glob("*.py")):
        found = dict(_REVISION_LINE.findall(path.read_text(encoding="utf-8")))
        try:
            revision = ast.literal_eval(found["revision"])
            down = ast.literal_eval(found.get("down_revision", "None"))
        except (KeyError, ValueError, SyntaxError):
            return None
        if not isinstance(revision, str):
            return None
        revisions.add(revision)
        parents.update([down] if isinstance(down, str) else (down or ()))
    return tuple(sorted(revisions - parents)) or None


@lru_cache(maxsize=8)
def _heads(location: str) -> tuple[str, ...]:
    quick = _quick_heads(location)
    if quick is not None:
        return quick
    from alembic.script import ScriptDirectory

    return tuple(ScriptDirectory.from_config(alembic_config(script_location=location)).get_heads())


def head_revision(script_location: str | Path | None = None) -> str:
    heads = _heads(str(script_location or MIGRATIONS_DIR))
    if len(heads) != 1:
        raise MigrationError(f"migrations in {script_location or MIGRATIONS_DIR} have {len(heads)} heads "
                             f"({', '.join(heads) or 'none'}); merge them into one")
    return heads[0]


def _current(conn: Connection) -> str | None:
    # A plain read of Alembic's version table, so a start with the schema current needs no Alembic.
    if not inspect(conn).has_table("alembic_version"):
        return None
    rows = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    if len(rows) > 1:
        raise MigrationError(f"database has {len(rows)} current revisions ({', '.join(rows)}); expected one")
    return rows[0] if rows else None


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None (empty or pre-Alembic database)."""
    with engine.connect() as conn:
        return _current(conn)


@contextmanager
def _migration_transaction(engine: Engine) -> Iterator[Connection]:
    """One connection, inside one transaction, holding the cross-process migration lock."""
    with engine.connect() as conn:
        dialect = conn.dialect.name
        if dialect == "sqlite":
            # Rebuilding a table in batch mode drops it; with foreign keys on, that would cascade
            # deletes into child tables. The pragma only takes effect outside a transaction.
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
            conn.commit()
            conn.exec_driver_sql("BEGIN IMMEDIATE")  # waits (busy_timeout) for another migrating worker
        elif dialect == "postgresql":
            # Released by COMMIT/ROLLBACK; DDL is transactional on PostgreSQL, so a crash leaves nothing half-done.
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_MIGRATION_LOCK_KEY})
        else:
            conn.begin()
        try:
            yield conn
            if dialect == "sqlite":
                broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise MigrationError(f"migration left {len(broken)} rows violating foreign keys, "
                                         f"first in table {broken[0][0]!r}; rolled back")
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        finally:
            if dialect == "sqlite":
                conn.exec_driver_sql("PRAGMA foreign_keys=ON")
                conn.commit()


@contextmanager
def migration_lock(engine: Engine) -> Iterator[None]:
    """Hold the lock `upgrade()` takes, without migrating: a worker starting meanwhile waits for it
    before touching the schema. For starting several workers at the same instant (the multi-worker
    test holds it until every worker waits on it)."""
    with _migration_transaction(engine):
        yield


def upgrade(engine: Engine, revision: str = "head", script_location: str | Path | None = None) -> None:
    """Bring the database's schema to `revision` (default: the newest)."""
    target = head_revision(script_location) if revision == "head" else revision
    with engine.connect() as conn:
        # Fast path for every start but the first after an upgrade: no lock, no Alembic run.
        if _current(conn) == target:
            return
    from alembic import command

    with _ALEMBIC_IN_PROCESS, _migration_transaction(engine) as conn:
        tables = set(inspect(conn).get_table_names())
        cfg = alembic_config(conn, script_location)
        if "alembic_version" not in tables and _SENTINEL_TABLE in tables:
            command.stamp(cfg, BASELINE_REVISION)
        command.upgrade(cfg, revision)


def prepare(engine: Engine, metadata: MetaData) -> None:
    """What a start runs. An empty database gets `metadata`'s tables and is stamped at the head:
    Alembic's own recipe for building a current database from scratch, done here without importing
    Alembic (about 13 MiB the bot would keep for its whole life). Any other database is upgraded.
    `metadata` must be the schema the shipped head builds (tests/test_migrations.py checks it)."""
    head = head_revision()
    with engine.connect() as conn:
        if _current(conn) == head:
            return
        empty = not inspect(conn).get_table_names()
    if empty and _create_at_head(engine, metadata, head):
        return
    upgrade(engine)


def _create_at_head(engine: Engine, metadata: MetaData, head: str) -> bool:
    """Create the tables and stamp `head`; False when another worker created tables meanwhile."""
    with _ALEMBIC_IN_PROCESS, _migration_transaction(engine) as conn:
        if inspect(conn).get_table_names():
            return False
        metadata.create_all(conn)
        version = Table("alembic_version", MetaData(), Column("version_num", String(32), nullable=False),
                        PrimaryKeyConstraint("version_num", name="alembic_version_pkc"))
        version.create(conn)
        conn.execute(version.insert().values(version_num=head))
    return True


def downgrade(engine: Engine, revision: str, script_location: str | Path | None = None) -> None:
    """Step the schema back to `revision` (for operators rolling back a release; data in dropped
    columns/tables is lost)."""
    from alembic import command

    with _ALEMBIC_IN_PROCESS, _migration_transaction(engine) as conn:
        command.downgrade(alembic_config(conn, script_location), revision)
