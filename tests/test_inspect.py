"""`briefbot inspect`: what the poll would make of every entry of a feed URL or file, and why,
without writing anything."""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from bot.analyse.topics import TopicMatcher
from bot.app.container import build_app, close_app, make_poller
from bot.app.inspect import ReadOnlyItems, inspect_command
from feedgen import TOPICS, Entry, make_env, make_settings, rss
from loopback import Reply
from pg import any_db_url, pg_server, pg_url  # noqa: F401  (pytest fixtures)

ANTIMONY = Entry("Customs seize 30 tonnes of smuggled antimony",
                 "Customs officers seized 30 tonnes of antimony ingots. Antimony prices in Rotterdam have doubled "
                 "to $38,000 per tonne this year.", guid="w-1", link="https://wire.example/antimony")
MAGNETS = Entry("China approves rare earth magnet export licences for 12 firms",
                "China approved rare earth magnet export licences for 12 European companies. NdPr oxide rose 4.5% "
                "to 615,000 yuan per tonne.", guid="w-2", link="https://wire.example/magnets")
FOOTBALL = Entry("City wins the cup final 3-1", "A late goal sealed it in front of 60,000 fans.",
                 guid="w-3", link="https://wire.example/football")
ENERGY = Entry("Regulator lifts price cap", "The standard energy tariff rises 2% under the new cap.",
               guid="w-4", link="https://wire.example/energy")
STALE = Entry("Gallium exports resume after a pause", "Gallium shipments restarted, 40 tonnes in a week.",
              guid="w-5", link="https://wire.example/gallium", hours_ago=72)


def write_config(tmp_path: Path, feed_url: str) -> Path:
    config = tmp_path / "feeds.yaml"
    config.write_text(json.dumps({"topics": TOPICS, "feeds": [{"name": "wire", "url": feed_url}],
                                  "routes": [{"name": "out", "to": ["jsonl:out/briefs.jsonl"]}]}), encoding="utf-8")
    return config


def run_cli(args: list[str], config: Path, db_url: str, **env) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "BRIEFBOT_CONFIG": str(config), "DATABASE_URL": db_url, **env}
    return subprocess.run([sys.executable, "-m", "bot", "inspect", *args], capture_output=True, text=True,
                          timeout=120, env=full_env)


def inspect(capsys, settings, env, *sources: str, as_json: bool = True, content_type: str | None = None):
    """inspect_command in this process: (exit code, stdout lines as JSON or text, stderr)."""
    args = argparse.Namespace(sources=list(sources), json=as_json, content_type=content_type)
    code = inspect_command(args, settings, env)
    out, err = capsys.readouterr()
    return code, [json.loads(x) for x in out.splitlines()] if as_json else out, err


def fingerprint(path: Path) -> tuple:
    """The database file's bytes and modification time, and what its write-ahead log holds. (A reader
    of a database in WAL mode, a read-only one too, creates an empty log and the -shm index where it
    marks which log frames it reads, if they are absent.)"""
    wal = Path(f"{path}-wal")
    return (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns,
            wal.read_bytes() if wal.exists() else b"")


def test_verdicts_agree_with_the_next_poll_and_nothing_is_written(http_server, tmp_path, db_url, capsys):
    served = {"body": rss([ANTIMONY])}
    url = http_server.route("/wire.xml", lambda req: Reply(200, served["body"], content_type="application/rss+xml"))
    settings = make_settings(tmp_path, [{"name": "wire", "url": url}])
    env = make_env(db_url)

    async def poll() -> dict:
        app = build_app(settings, env)
        try:
            (report,) = await make_poller(app).poll_all(force=True)
        finally:
            await close_app(app)
            app.store.close()  # its last connection checkpoints the log: the files are at rest
        return report

    assert len(asyncio.run(poll()).new_briefs) == 1  # ANTIMONY is now recorded
    served["body"] = rss([ANTIMONY, MAGNETS, FOOTBALL, ENERGY, STALE, MAGNETS])
    db_file = Path(db_url.removeprefix("sqlite:///"))
    before = fingerprint(db_file)
    code, rows, _ = inspect(capsys, settings, env, url)
    assert code == 0 and fingerprint(db_file) == before  # read, never written
    assert [(r["id"], r["verdict"]) for r in rows] == [
        ("w-1", "seen"), ("w-2", "new"), ("w-3", "off-topic"), ("w-4", "off-topic"), ("w-5", "too old"),
        ("w-2", "seen")]
    seen, magnets, football, energy, stale, repeat = rows
    assert seen["reason"] == "already recorded by feed 'wire'"
    assert repeat["reason"] == "repeats entry 2 of this document"
    assert magnets["source"] == f"wire ({url})" and magnets["topics"] == ["rare-earth"]
    assert magnets["matched_by"] == [{"topic": "rare-earth", "keyword": "rare earth", "exclude": None}]
    assert magnets["lang"] == "en" and {"4.5%", "615,000 yuan per tonne"} <= {f["text"] for f in magnets["figures"]}
    assert datetime.fromisoformat(magnets["published"]).tzinfo == timezone.utc and magnets["published"].endswith("Z")
    assert football["matched_by"] == [] and football["reason"] == "no topic keyword in the title or text"
    # The first of the topic's exclude phrases in the text ("price cap", in the title) is named.
    assert energy["matched_by"] == [{"topic": "tariff", "keyword": "tariff", "exclude": "price cap"}]
    assert energy["reason"] == 'tariff: "tariff" found, but excluded by "price cap"'
    assert stale["reason"] == "published 3d ago; the limit is 1d (max_age)" and stale["topics"] == ["rare-earth"]
    # The poll that follows decides exactly as inspect said.
    report = asyncio.run(poll())
    assert (len(report.new_briefs), report.irrelevant, report.old) == (1, 2, 1)


def test_database_is_opened_read_only(http_server, tmp_path, any_db_url, capsys):
    url = http_server.route("/wire.xml", Reply(200, rss([ANTIMONY]), content_type="application/rss+xml"))
    settings, env = make_settings(tmp_path, [{"name": "wire", "url": url}]), make_env(any_db_url)
    app = build_app(settings, env)
    try:
        asyncio.run(make_poller(app).poll_all(force=True))
    finally:
        asyncio.run(close_app(app))
        app.store.close()
    code, rows, _ = inspect(capsys, settings, env, url)
    assert code == 0 and [r["verdict"] for r in rows] == ["seen"]
    items = ReadOnlyItems.open(any_db_url)
    try:
        with items.engine.connect() as c, pytest.raises(DBAPIError, match="read-?only"):
            c.execute(text("DELETE FROM items"))
    finally:
        items.close()
    assert ReadOnlyItems.open(f"sqlite:///{tmp_path}/absent.db") is None
    assert not (tmp_path / "absent.db").exists()


def test_local_json_feed_file_through_the_cli_without_a_database(tmp_path):
    now = datetime.now(timezone.utc).replace(microsecond=0)
    feed = {"version": "https://jsonfeed.org/version/1.1", "home_page_url": "https://notes.example/", "items": [
        {"id": "n1", "url": "/tariffs", "title": "US raises tariffs on steel to 25%",
         "content_text": "The new tariff of 25% applies from December 1.", "date_published": now.isoformat()},
        {"id": "n2", "url": "/cup", "title": "City wins the cup", "content_text": "3-1."}]}
    path = tmp_path / "notes.json"
    path.write_text(json.dumps(feed), encoding="utf-8")
    config = write_config(tmp_path, "https://wire.example/feed.xml")
    db_url = f"sqlite:///{tmp_path}/never.db"
    proc = run_cli([str(path), "--json"], config, db_url)
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert all(set(r) == {"source", "title", "link", "id", "published", "lang", "text", "topics", "matched_by",
                          "figures", "verdict", "reason"} for r in rows)
    tariffs, cup = rows
    assert tariffs["source"] == str(path) and tariffs["link"] == "https://notes.example/tariffs"
    assert tariffs["published"] == now.isoformat().replace("+00:00", "Z") and tariffs["verdict"] == "new"
    assert tariffs["topics"] == ["tariff"] and tariffs["matched_by"][0]["keyword"] in ("tariff", "tariffs")
    assert cup["published"] is None and cup["verdict"] == "off-topic"
    assert "no database yet" in proc.stderr
    assert not (tmp_path / "never.db").exists()  # no database was created
    text_run = run_cli([str(path)], config, db_url)
    assert text_run.returncode == 0
    assert "[new] US raises tariffs on steel to 25%" in text_run.stdout
    assert "  verdict   off-topic: no topic keyword in the title or text" in text_run.stdout


def test_unreadable_sources_are_one_line_each_and_exit_1_when_none_could_be_read(http_server, tmp_path):
    http_server.route("/missing.xml", Reply(404, b"no"))
    http_server.route("/page.html", Reply(200, b"<!doctype html><html><body>hi</body></html>",
                                          content_type="text/html"))
    ok = http_server.route("/ok.xml", Reply(200, rss([MAGNETS]), content_type="application/rss+xml"))
    config = write_config(tmp_path, ok)
    db_url = f"sqlite:///{tmp_path}/db.sqlite"
    bad = [http_server.url("/missing.xml"), http_server.url("/page.html"), str(tmp_path / "nope.xml")]
    proc = run_cli(bad, config, db_url)
    assert proc.returncode == 1 and proc.stdout == ""
    lines = [x for x in proc.stderr.splitlines() if not x.startswith("briefbot: inspect: no database")]
    assert lines == [
        f"briefbot: inspect: {http_server.url('/missing.xml')}: HTTP 404 not found",
        f"briefbot: inspect: {http_server.url('/page.html')}: got an HTML page, not an RSS/Atom feed "
        "(is the feed URL right?)",
        f"briefbot: inspect: {tmp_path / 'nope.xml'}: no such file, and not a URL or a configured feed's name"]
    as_json = run_cli([*bad, "wire", "--json"], config, db_url)  # one readable source: exit 0
    assert as_json.returncode == 0
    rows = [json.loads(x) for x in as_json.stdout.splitlines()]
    assert [set(r) for r in rows[:3]] == [{"source", "error"}] * 3
    assert rows[3]["source"] == f"wire ({ok})" and rows[3]["verdict"] == "new"
    assert "Traceback" not in proc.stderr + as_json.stderr


def test_ssrf_guard_refuses_a_private_address_unless_allowed(http_server, tmp_path, capsys):
    url = http_server.route("/wire.xml", Reply(200, rss([MAGNETS]), content_type="application/rss+xml"))
    settings = make_settings(tmp_path, [])
    refused = make_env(f"sqlite:///{tmp_path}/db.sqlite", allow_private_urls=False)
    code, rows, _ = inspect(capsys, settings, refused, url)
    assert code == 1 and rows == [{"source": url, "error": rows[0]["error"]}]
    assert "refused" in rows[0]["error"] and "BRIEFBOT_ALLOW_PRIVATE_URLS" in rows[0]["error"]
    assert http_server.requests_to("/wire.xml") == []  # nothing was sent
    code, rows, _ = inspect(capsys, settings, make_env(f"sqlite:///{tmp_path}/db.sqlite"), url)
    assert code == 0 and rows[0]["verdict"] == "new" and rows[0]["source"] == url  # not a configured feed


def test_content_type_option_names_the_charset_of_a_file(tmp_path, capsys):
    body = ('<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><item><title>Café owners face '
            'tariffs</title><guid>c1</guid><description>Tariffs of 10%.</description></item></channel></rss>')
    path = tmp_path / "latin1.xml"
    path.write_bytes(body.encode("iso-8859-1"))
    settings, env = make_settings(tmp_path, []), make_env(f"sqlite:///{tmp_path}/db.sqlite")
    _, (row,), _ = inspect(capsys, settings, env, str(path), content_type="application/rss+xml; charset=iso-8859-1")
    assert row["title"] == "Café owners face tariffs" and row["verdict"] == "new"


def test_unreadable_database_is_exit_3(tmp_path, capsys):
    (tmp_path / "db.sqlite").write_bytes(b"this is not a database" * 100)
    code, out, err = inspect(capsys, make_settings(tmp_path, []), make_env(f"sqlite:///{tmp_path}/db.sqlite"),
                             str(tmp_path / "any.xml"), as_json=False)
    assert code == 3 and out == ""
    assert err.startswith("briefbot: inspect: cannot read the database's items (DatabaseError: ")
    assert err.count("\n") == 1


@pytest.mark.parametrize("text_", ["The standard energy tariff rises", "Tariffs and a price cap", "稀土出口 关税",
                                   "rare-earth magnets and trade war", "nothing here", "NdPr oxide; 电价上涨"])
def test_explain_names_what_decided_match(tmp_path, text_):
    matcher = TopicMatcher(make_settings(tmp_path, []))
    explained = matcher.explain(text_)
    assert [m.topic for m in explained if m.exclude is None] == matcher.match(text_)
    for m in explained:
        assert m.keyword in TOPICS[m.topic]["keywords"]
        assert m.exclude is None or m.exclude in TOPICS[m.topic]["exclude"]
