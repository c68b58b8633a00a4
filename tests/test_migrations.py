"""Schema migrations (Alembic, run in-process by Store.create) on SQLite and a real PostgreSQL."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import datetime, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from pg import any_db_url, pg_server, pg_url  # noqa: F401  (pytest fixtures)
from sqlalchemy import MetaData, Table, create_engine, inspect, select, text
from storedata import save_brief

from bot.models import Brief, Source
from bot.store import ItemRecord, Store
from bot.store import schema as t
from bot.store.migrate import (
    BASELINE_REVISION,
    MIGRATIONS_DIR,
    MigrationError,
    current_revision,
    downgrade,
    head_revision,
    upgrade,
)
from bot.store.schema import metadata

# A later release's migration, written the way a developer would: changes to `briefs` (the
# parent of two foreign keys) and a new table. SQLite cannot change a column type in place,
# so batch mode rebuilds `briefs` and drops the old one: with foreign keys enforced, that
# drop would cascade-delete every brief_topics/brief_sources row.
SHIPPED_HEAD = head_revision()
NEXT = "9002"

SECOND_REVISION = '''"""Briefs remember who edited them; per-target delivery notes.

Revision ID: 9002
Revises: {head}
"""
import sqlalchemy as sa
from alembic import op

revision = "9002"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("briefs") as batch:
        batch.add_column(sa.Column("edited_by", sa.String(100), nullable=True))
        # Tags like "zh-Hant-TW" need more than 8 characters.
        batch.alter_column("language", type_=sa.String(16), existing_type=sa.String(8))
    op.create_table(
        "delivery_notes",
        sa.Column("target", sa.Text, primary_key=True),
        sa.Column("note", sa.Text, nullable=False),
    )


def downgrade():
    op.drop_table("delivery_notes")
    with op.batch_alter_table("briefs") as batch:
        batch.alter_column("language", type_=sa.String(8), existing_type=sa.String(16))
        batch.drop_column("edited_by")
'''




@pytest.fixture
def migrations_v2(tmp_path):
    """A copy of the shipped migrations plus a later release's revision."""
    location = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, location, ignore=shutil.ignore_patterns("__pycache__"))
    (location / "versions" / "9002_edited_by.py").write_text(SECOND_REVISION.replace("{head}", SHIPPED_HEAD),
                                                            encoding="utf-8")
    return location


def schema_diffs(store: Store) -> list:
    with store.engine.connect() as conn:
        return compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)


def sample_brief(brief_id: str = "b_0123456789abcdef") -> Brief:
    return Brief(id=brief_id, topics=["rare-earth"], mode="extractive",
                 title={"en": "Gallium export licences resume", "zh": "镓出口许可恢复发放"},
                 summary={"en": "Licences for 40 tonnes of gallium were approved.",
                          "zh": "批准了40吨镓的出口许可。"},
                 sources=[Source(url="https://metals.example/gallium", feed="metals-wire",
                                 title="Gallium export licences resume",
                                 published=datetime(2026, 3, 2, 7, 0, tzinfo=timezone.utc))],
                 created=datetime(2026, 3, 2, 8, 30, tzinfo=timezone.utc))


def store_one_brief(store: Store) -> Brief:
    brief = sample_brief()
    item = ItemRecord(feed="metals-wire", item_key="k1", guid="g1", link="https://metals.example/gallium",
                      link_key="l1", content_key="c1", title=brief.title["en"], published=None,
                      status="briefed", topics=["rare-earth"])
    store.ensure_feed("metals-wire", "https://metals.example/feed.xml")
    assert save_brief(store, brief, item, ["jsonl:out/briefs.jsonl"], {"lang": "en"}, language="en")
    return brief


def count(store: Store, table) -> int:
    with store.engine.connect() as conn:
        return len(conn.execute(select(table)).all())


def test_empty_database_is_upgraded_to_head_matching_schema(any_db_url):
    store = Store(any_db_url)
    try:
        assert current_revision(store.engine) is None
        store.create()
        assert current_revision(store.engine) == head_revision() == SHIPPED_HEAD
        # The migrations build exactly what bot/store/schema.py declares (types, indexes, constraints).
        assert schema_diffs(store) == []
        store.create()  # a restart: nothing to do, nothing breaks
        assert current_revision(store.engine) == SHIPPED_HEAD
        store_one_brief(store)
    finally:
        store.close()


def test_the_migration_chain_builds_what_the_schema_declares(any_db_url):
    """A fresh database is made from schema.py and stamped; an existing one is migrated. Both must
    give the same schema, so the chain from the baseline is run here on an empty database."""
    store = Store(any_db_url)
    try:
        upgrade(store.engine)
        assert current_revision(store.engine) == SHIPPED_HEAD
        assert schema_diffs(store) == []
        store.create()  # a start finds it current
        store_one_brief(store)
    finally:
        store.close()


def test_a_start_on_an_empty_database_needs_no_alembic(tmp_path):
    code = ("import sys; from bot.store import Store; s = Store(sys.argv[1]); s.create(); s.close(); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('alembic', 'mako')))")
    done = subprocess.run([sys.executable, "-c", code, f"sqlite:///{tmp_path}/fresh.db"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"


def pre_alembic_sqlite(tmp_path) -> str:
    """A database from before migrations: the baseline schema, no alembic_version table."""
    url = f"sqlite:///{tmp_path}/old.db"
    legacy = create_engine(url)
    upgrade(legacy, BASELINE_REVISION)
    with legacy.begin() as conn:
        conn.execute(text("DROP TABLE alembic_version"))
    legacy.dispose()
    return url


def test_pre_alembic_sqlite_database_is_stamped_and_keeps_its_data(tmp_path):
    store = Store(pre_alembic_sqlite(tmp_path))
    try:
        brief = store_one_brief(store)
        assert "alembic_version" not in inspect(store.engine).get_table_names()
        store.create()
        assert current_revision(store.engine) == SHIPPED_HEAD
        assert store.get_brief(brief.id) == brief
        assert store.latest_briefs("rare-earth") == [brief]
        assert [r.status for r in store.outbox_rows()] == ["pending"]
    finally:
        store.close()


def test_second_revision_upgrades_an_existing_database_and_rolls_back(any_db_url, migrations_v2):
    store = Store(any_db_url)
    try:
        store.create()
        brief = store_one_brief(store)
        assert count(store, t.brief_topics) == 1 and count(store, t.brief_sources) == 1
        assert head_revision(migrations_v2) == NEXT

        upgrade(store.engine, script_location=migrations_v2)
        assert current_revision(store.engine) == NEXT
        tables = inspect(store.engine)
        assert "edited_by" in {c["name"] for c in tables.get_columns("briefs")}
        assert "delivery_notes" in tables.get_table_names()
        # Existing rows survive, including child rows of the rebuilt `briefs` table.
        assert store.get_brief(brief.id) == brief
        assert count(store, t.brief_topics) == 1 and count(store, t.brief_sources) == 1
        assert store.latest_briefs("rare-earth") == [brief]
        with store.engine.connect() as conn:
            assert conn.execute(select(t.briefs.c.id)).scalars().all() == [brief.id]
        # The running code's schema now differs from the database: the new column and table.
        assert {d[0] if isinstance(d, tuple) else d[0][0] for d in schema_diffs(store)} >= \
            {"remove_table", "remove_column", "modify_type"}

        downgrade(store.engine, SHIPPED_HEAD, script_location=migrations_v2)
        assert current_revision(store.engine) == SHIPPED_HEAD
        assert "edited_by" not in {c["name"] for c in inspect(store.engine).get_columns("briefs")}
        assert schema_diffs(store) == []
        assert store.get_brief(brief.id) == brief and count(store, t.brief_topics) == 1

        upgrade(store.engine, script_location=migrations_v2)  # and forward again
        assert current_revision(store.engine) == NEXT
        assert store.get_brief(brief.id) == brief
    finally:
        store.close()


def test_second_revision_applies_to_a_pre_alembic_database(tmp_path, migrations_v2):
    store = Store(pre_alembic_sqlite(tmp_path))
    try:
        brief = store_one_brief(store)
        upgrade(store.engine, script_location=migrations_v2)  # stamp the baseline, then upgrade
        assert current_revision(store.engine) == NEXT
        assert store.get_brief(brief.id) == brief and count(store, t.brief_topics) == 1
        briefs = Table("briefs", MetaData(), autoload_with=store.engine)  # as the database has it now
        with store.engine.connect() as conn:
            assert conn.execute(select(briefs.c.id, briefs.c.edited_by)).all() == [(brief.id, None)]
    finally:
        store.close()


# A worker process: imports, says it is ready, waits for the starting gun (the end of a pipe that
# the test closes for all of them at once), then migrates.
WORKER = """
import os, sys
from bot.store import Store
url, gun = sys.argv[1], int(sys.argv[2])
print("ready", flush=True)
os.read(gun, 1)
store = Store(url)
store.create()
store.close()
"""


def test_worker_processes_starting_at_once_migrate_once(any_db_url, tmp_path):
    """Several `briefbot run` processes call Store.create() on one fresh database at the same moment."""
    workers = 4
    gun, fire = os.pipe()
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, any_db_url, str(gun)], pass_fds=(gun,),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(workers)]
    os.close(gun)
    try:
        for p in procs:  # every worker has imported and waits for the gun
            assert p.stdout.readline() == "ready\n", p.communicate()
        os.close(fire)  # EOF on the gun, for all of them at once
        fire = None
        results = [(p.wait(timeout=60), p.stderr.read()) for p in procs]
    finally:
        if fire is not None:
            os.close(fire)
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
            p.stdout.close()
            p.stderr.close()
    assert [code for code, _ in results] == [0] * workers, [err[-2000:] for _, err in results]
    store = Store(any_db_url)
    try:
        assert current_revision(store.engine) == SHIPPED_HEAD
        with store.engine.connect() as conn:  # one version row: no worker stamped it twice
            assert MigrationContext.configure(conn).get_current_heads() == (SHIPPED_HEAD,)
        assert schema_diffs(store) == []
    finally:
        store.close()


def test_branched_migrations_are_refused_with_a_clear_error(tmp_path, migrations_v2):
    # Another revision also branching from the shipped head: two heads, ambiguous "head".
    other = SECOND_REVISION.replace('revision = "9002"', 'revision = "9002b"').replace("{head}", SHIPPED_HEAD)
    (migrations_v2 / "versions" / "9002b_other.py").write_text(other, encoding="utf-8")
    store = Store(f"sqlite:///{tmp_path}/x.db")
    try:
        with pytest.raises(MigrationError, match="2 heads"):
            upgrade(store.engine, script_location=migrations_v2)
    finally:
        store.close()
