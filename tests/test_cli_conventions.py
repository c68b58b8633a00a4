"""Command-line conventions: --version, global options after the subcommand, poll --once's exit
code, the --json outputs of feeds, outbox and stats, and outbox --retry-failed --since."""

from __future__ import annotations

import json
from datetime import timedelta
from importlib import metadata

import pytest
from feedgen import Entry, rss
from loopback import Reply
from test_cli import run

from bot.models import utcnow
from bot.store import Store

FEED_FIELDS = {"name", "status", "last_fetch", "last_success", "items", "held", "failures", "next_attempt",
               "last_error", "disabled_reason", "origin"}
OUTBOX_FIELDS = {"id", "status", "kind", "ref_id", "target", "attempts", "next_attempt_at", "last_error",
                 "external_id", "created"}


def write_config(tmp_path, feed_url: str, extra_feed: str = "") -> dict:
    config = tmp_path / "feeds.yaml"
    config.write_text(f"""
topics:
  rare-earth:
    label: {{en: Rare earths, zh: 稀土}}
    keywords: [antimony, 锑]
feeds:
  - {{name: wire, url: "{feed_url}"}}
{extra_feed}
routes:
  - {{name: out, to: ["jsonl:out/briefs.jsonl"]}}
""", encoding="utf-8")
    return {"DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite", "BRIEFBOT_CONFIG": str(config)}


def test_version_comes_from_the_package_metadata():
    proc = run(["--version"])
    assert proc.returncode == 0 and proc.stdout.strip() == f"briefbot {metadata.version('briefbot')}"


def test_global_options_before_or_after_the_subcommand(tmp_path):
    env = write_config(tmp_path, "https://wire.example/feed.xml")
    elsewhere = {"BRIEFBOT_CONFIG": str(tmp_path / "missing.yaml")}
    after = run(["check", "--config", env["BRIEFBOT_CONFIG"], "--log-level", "debug"], env=elsewhere)
    assert after.returncode == 0 and "OK — 1 topics, 1 feeds" in after.stdout, after.stderr
    before = run(["--config", env["BRIEFBOT_CONFIG"], "check"], env=elsewhere)
    assert before.returncode == 0, before.stderr  # not reset by the subcommand's own --config
    bad = run(["check", "--log-level", "loud"], env=env)
    assert bad.returncode == 2 and "log level 'loud'" in bad.stderr
    missing = run(["feeds", "--config", str(tmp_path / "missing.yaml")], env=env)
    assert missing.returncode == 2 and "missing.yaml" in missing.stderr


def test_poll_once_exits_1_when_every_feed_failed(http_server, tmp_path):
    http_server.route("/feed.xml", Reply(500, b"down"))
    env = write_config(tmp_path, http_server.url("/feed.xml"))
    proc = run(["poll", "--once"], env=env)
    assert proc.returncode == 1 and "1 feed error(s)" in proc.stderr


def test_json_outputs_of_feeds_outbox_and_stats(http_server, tmp_path):
    http_server.route("/feed.xml", Reply(200, rss([Entry(
        "Antimony prices hit record as exports stay curbed",
        "Antimony traded at $38,000 per tonne in Rotterdam, up 12% in a month.",
        guid="a1", link="https://wire.example/a1")]), content_type="application/rss+xml"))
    http_server.route("/down.xml", Reply(500, b"down"))
    env = write_config(tmp_path, http_server.url("/feed.xml"),
                       extra_feed=f'  - {{name: down, url: "{http_server.url("/down.xml")}"}}')
    never = [json.loads(line) for line in run(["feeds", "--json"], env=env).stdout.splitlines()]
    assert [(f["name"], f["status"], f["last_fetch"]) for f in never] == [("wire", "never polled", None),
                                                                         ("down", "never polled", None)]
    assert run(["poll", "--once"], env=env).returncode == 0

    feeds = [json.loads(line) for line in run(["feeds", "--json"], env=env).stdout.splitlines()]
    by_name = {f["name"]: f for f in feeds}
    assert all(set(f) == FEED_FIELDS for f in feeds + never)
    assert by_name["wire"]["items"] == 1 and by_name["wire"]["held"] == 0 and by_name["wire"]["failures"] == 0
    assert by_name["wire"]["last_fetch"] is not None and by_name["wire"]["last_error"] is None
    assert by_name["down"]["failures"] == 1 and "500" in by_name["down"]["last_error"]
    assert by_name["down"]["next_attempt"] is not None
    assert {f["origin"] for f in feeds + never} == {"feeds.yaml"}
    assert http_server.url("/feed.xml") not in json.dumps(feeds)  # URLs may hold tokens

    outbox = [json.loads(line) for line in run(["outbox", "--json"], env=env).stdout.splitlines()]
    assert len(outbox) == 1 and set(outbox[0]) == OUTBOX_FIELDS
    assert outbox[0]["status"] == "sent" and outbox[0]["kind"] == "brief" and outbox[0]["attempts"] == 1
    assert outbox[0]["target"].startswith("jsonl:")

    stats = json.loads(run(["stats", "--json"], env=env).stdout)
    assert stats["briefs_stored"] == 1 and stats["outbox_pending"] == 0
    assert stats["llm_days"] == []  # no LLM configured: extractive briefs cost nothing


@pytest.fixture
def failed_deliveries(tmp_path):
    """Three failed deliveries, queued 2 hours, 3 days and 3 weeks ago."""
    env = write_config(tmp_path, "https://wire.example/feed.xml")
    store = Store(env["DATABASE_URL"])
    store.create()
    for ref, age in (("fresh", timedelta(hours=2)), ("days", timedelta(days=3)), ("weeks", timedelta(weeks=3))):
        store.enqueue("brief", ref, ["jsonl:out/briefs.jsonl"], now=utcnow() - age)
        (row,) = store.outbox_rows(ref_id=ref)
        store.outbox_failed(row.id, "channel_not_found")
    yield env, store
    store.close()


def pending(store: Store) -> set[str]:
    return {r.ref_id for r in store.outbox_rows(status="pending")}


def test_retry_failed_defaults_to_the_last_24_hours(failed_deliveries):
    env, store = failed_deliveries
    proc = run(["outbox", "--retry-failed"], env=env)
    assert proc.returncode == 0, proc.stderr
    assert "1 failed deliveries queued again" in proc.stdout and "2 older left failed" in proc.stdout
    assert pending(store) == {"fresh"}


def test_retry_failed_since_a_duration(failed_deliveries):
    env, store = failed_deliveries
    proc = run(["outbox", "--retry-failed", "--since", "7d"], env=env)
    assert proc.returncode == 0 and "2 failed deliveries queued again" in proc.stdout
    assert pending(store) == {"fresh", "days"}
    assert {r.ref_id for r in store.outbox_rows(status="failed")} == {"weeks"}


def test_since_is_checked(failed_deliveries):
    env, store = failed_deliveries
    bad = run(["outbox", "--retry-failed", "--since", "soon"], env=env)
    assert bad.returncode == 2 and "invalid duration 'soon'" in bad.stderr
    alone = run(["outbox", "--since", "2d"], env=env)
    assert alone.returncode == 2 and "--since goes with --retry-failed" in alone.stderr
    assert pending(store) == set()
