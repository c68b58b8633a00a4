"""Alembic environment for briefbot.

Normally run in-process by `bot.store.migrate.upgrade`, which hands over an open connection
(already inside a transaction and holding the migration lock) through
`config.attributes["connection"]`. Without one (a developer running the `alembic` command
line with `-x url=...` or DATABASE_URL set), it connects by itself.
"""

from __future__ import annotations

import os

from alembic import context

from bot.store.engine import make_engine
from bot.store.schema import metadata

config = context.config


def _configure_and_run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things in place: batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _configure_and_run(connection)
elif context.is_offline_mode():
    context.configure(url=context.get_x_argument(as_dictionary=True).get("url") or os.environ["DATABASE_URL"],
                      target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    url = context.get_x_argument(as_dictionary=True).get("url") or os.environ.get("DATABASE_URL")
    if not url:
        raise SystemExit("alembic: set DATABASE_URL or pass -x url=... to say which database to migrate")
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            _configure_and_run(conn)
            conn.commit()
    finally:
        engine.dispose()
