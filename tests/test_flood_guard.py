"""The flood guard over a real loopback feed server: at most `max_new_per_poll` briefs from one feed
in one poll (the rest stored as held and summarised in one notice), at most `max_posts_per_hour`
briefs to one target (the rest wait in the outbox), and nothing held back is ever silently lost."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from datetime import timedelta

import pytest
from feedgen import Entry, lines, make_env, make_settings, poll_and_deliver, rss
from loopback import Reply
from pg import any_db_url, pg_server, pg_url  # noqa: F401  (pytest fixtures)
from sqlalchemy import func, select, update

from bot.app.container import build_app, close_app, make_dispatcher
from bot.commands import CommandService
from bot.config import ConfigError, load_config
from bot.digest import build_digest, render_digest_text
from bot.models import utcnow
from bot.store import CAP_WAIT
from bot.store import schema as t

COUNTRIES = ("Canada", "Mexico", "Japan", "Korea", "Vietnam", "India", "Brazil", "Chile", "Peru", "Norway")
GOODS = ("steel", "avocados", "solar panels", "lumber", "copper wire", "sugar", "tyres", "salmon", "glass",
         "aluminium foil", "paper", "cement", "shrimp", "honey", "garlic", "bicycles", "wine", "cotton",
         "ceramic tiles", "furniture", "batteries", "chips", "pipes", "rice", "beef", "cars", "toys", "shoes",
         "textiles", "drones")


def tariff_entries(n: int, prefix: str = "t") -> list[Entry]:
    """`n` distinct on-topic stories: each a different country and good, each its own GUID and link."""
    out = []
    for i in range(n):
        country, good = COUNTRIES[i % len(COUNTRIES)], GOODS[(i // len(COUNTRIES)) % len(GOODS)]
        title = f"US sets {10 + i % 40}% tariff on {country} {good} (notice {prefix}{i})"
        body = f"The new tariff on {good} from {country} takes effect next month, notice {prefix}{i}."
        out.append(Entry(title, body, guid=f"{prefix}{i}", link=f"https://wire.example/{prefix}/{i}",
                         hours_ago=1 + i / 100))
    return out


def item_statuses(app, feed: str) -> dict[str, int]:
    c = t.items.c
    with app.store.engine.connect() as conn:
        return dict(conn.execute(select(c.status, func.count()).where(c.feed == feed).group_by(c.status)).all())


def serve(http_server, entries: list[Entry]) -> str:
    http_server.route("/flood.xml", Reply(200, rss(entries), content_type="application/rss+xml"))
    return http_server.url("/flood.xml")


async def test_per_poll_cap_holds_the_rest_and_summarises_them_once(http_server, tmp_path, any_db_url):
    entries = tariff_entries(50)
    settings = make_settings(tmp_path, [{"name": "flood", "url": serve(http_server, entries)}],
                             targets=["jsonl:out/briefs.jsonl", "console"])
    console = io.StringIO()
    app = build_app(settings, make_env(any_db_url), console_stream=console)
    try:
        [report] = await poll_and_deliver(app)
        assert len(report.new_briefs) == 10 and report.held == 40
        assert item_statuses(app, "flood") == {"briefed": 10, "held": 40}
        out = lines(tmp_path / "out" / "briefs.jsonl")
        briefs, notices = [o for o in out if "id" in o], [o["notice"] for o in out if "notice" in o]
        assert len(briefs) == 10 and len(notices) == 1
        notice = notices[0]
        assert notice["feed"] == "flood" and notice["count"] == 40 and notice["topics"] == ["tariff"]
        briefed_links = {b["sources"][0]["url"] for b in briefs}
        held_links = {e.link for e in entries} - briefed_links
        assert len(notice["headlines"]) == 5
        for headline in notice["headlines"]:  # the newest held items, each with its link
            assert headline["url"] in held_links and headline["title"].startswith("US sets ")
        text = console.getvalue()
        assert "40 more items from feed flood matched *Tariffs* — held back, not briefed" in text
        assert "订阅源 flood 另有 40 条匹配*关税*的条目被暂缓" in text
        assert notice["headlines"][0]["url"] in text
        health = {h.name: h for h in CommandService(settings, app.store).feeds_health()}
        assert health["flood"].held == 40

        # The next poll brings one more story: briefed; the held ones are known, never held or summarised again.
        serve(http_server, tariff_entries(1, prefix="new") + entries)
        [again] = await poll_and_deliver(app)
        assert len(again.new_briefs) == 1 and again.held == 0
        out = lines(tmp_path / "out" / "briefs.jsonl")
        assert sum("notice" in o for o in out) == 1 and sum("id" in o for o in out) == 11
        assert item_statuses(app, "flood") == {"briefed": 11, "held": 40}
    finally:
        await close_app(app)


async def test_held_items_in_the_digest(http_server, tmp_path, db_url):
    settings = make_settings(tmp_path, [{"name": "flood", "url": serve(http_server, tariff_entries(25))}],
                             max_new_per_poll=5)
    app = build_app(settings, make_env(db_url), console_stream=io.StringIO())
    try:
        await poll_and_deliver(app)
        digest = build_digest(settings, app.store, None, now=utcnow() + timedelta(seconds=1))
        assert [(h.feed, h.count, h.topics) for h in digest.held] == [("flood", 20, ["tariff"])]
        text = render_digest_text(digest)
        assert "20 more items from feed flood matched Tariffs — held back, not briefed" in text
        assert "订阅源 flood 另有 20 条匹配关税的条目被暂缓" in text
        # A digest of another topic does not count them.
        rare = build_digest(settings.model_copy(update={"topics": {"rare-earth": settings.topics["rare-earth"]}}),
                            app.store, None, now=utcnow() + timedelta(seconds=1))
        assert rare.held == []
    finally:
        await close_app(app)


async def test_per_target_cap_the_31st_post_waits_and_goes_out_when_the_hour_allows(http_server, tmp_path, any_db_url):
    feeds = [{"name": "busy", "url": serve(http_server, tariff_entries(31)), "max_new_per_poll": 40}]
    settings = make_settings(tmp_path, feeds, targets=["jsonl:out/briefs.jsonl"])
    app = build_app(settings, make_env(any_db_url), console_stream=io.StringIO())
    path = tmp_path / "out" / "briefs.jsonl"
    try:
        [report] = await poll_and_deliver(app)
        assert len(report.new_briefs) == 31 and report.held == 0
        assert len(lines(path)) == 30
        [waiting] = app.store.outbox_rows(status="pending")
        assert waiting.last_error.startswith(CAP_WAIT) and waiting.next_attempt_at > utcnow()
        health = {h.name: h for h in CommandService(settings, app.store).feeds_health()}
        assert health["busy"].held == 1  # the waiting brief is counted as held back
        assert await make_dispatcher(app).dispatch_once() == 0  # not due yet: nothing lost, nothing sent

        # An hour passes: the hour's posts are older than an hour, and the waiting row falls due.
        o = t.outbox.c
        with app.store.engine.begin() as conn:
            conn.execute(update(t.outbox).where(o.status == "sent").values(sent_at=o.sent_at - timedelta(hours=1)))
            conn.execute(update(t.outbox).where(o.status == "pending").values(next_attempt_at=utcnow()))
        assert await make_dispatcher(app).dispatch_once() == 1
        out = lines(path)
        assert len(out) == 31 and len({b["id"] for b in out}) == 31
        assert app.store.outbox_rows(status="pending") == []
        assert CommandService(settings, app.store).feeds_health()[0].held == 0
    finally:
        await close_app(app)


async def test_route_cap_is_per_target(http_server, tmp_path, db_url):
    settings = make_settings(tmp_path, [{"name": "wire", "url": serve(http_server, tariff_entries(5))}],
                             routes=[{"name": "slow", "to": ["jsonl:out/slow.jsonl"], "max_posts_per_hour": 2},
                                     {"name": "fast", "to": ["jsonl:out/fast.jsonl"]}])
    app = build_app(settings, make_env(db_url), console_stream=io.StringIO())
    try:
        await poll_and_deliver(app)
        assert len(lines(tmp_path / "out" / "slow.jsonl")) == 2
        assert len(lines(tmp_path / "out" / "fast.jsonl")) == 5
        assert len(app.store.outbox_rows(status="pending")) == 3
    finally:
        await close_app(app)


async def test_a_feed_of_hundreds_of_items_is_capped_and_the_rest_summarised(http_server, tmp_path, db_url):
    entries = tariff_entries(300)
    settings = make_settings(tmp_path, [{"name": "huge", "url": serve(http_server, entries)}])
    app = build_app(settings, make_env(db_url), console_stream=io.StringIO())
    try:
        [report] = await poll_and_deliver(app)
        assert len(report.new_briefs) == 10 and report.held == 290
        assert item_statuses(app, "huge") == {"briefed": 10, "held": 290}  # every item stored: none dropped
        out = lines(tmp_path / "out" / "briefs.jsonl")
        [notice] = [o["notice"] for o in out if "notice" in o]
        assert notice["count"] == 290 and sum("id" in o for o in out) == 10
        assert app.store.feed_state("huge").items_total == 300
    finally:
        await close_app(app)


def test_briefbot_feeds_shows_the_held_count(http_server, tmp_path):
    config = tmp_path / "feeds.yaml"
    config.write_text(f"""
max_new_per_poll: 3
topics:
  tariff:
    label: {{en: Tariffs, zh: 关税}}
    keywords: [tariff]
feeds:
  - {{name: wire, url: "{serve(http_server, tariff_entries(8))}"}}
routes:
  - {{name: out, to: ["jsonl:out/briefs.jsonl"]}}
""", encoding="utf-8")
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite", "BRIEFBOT_CONFIG": str(config)}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "bot", *args], capture_output=True, text=True, timeout=120,
                              env=env)

    assert run("poll", "--once").returncode == 0
    table = run("feeds")
    assert table.returncode == 0, table.stderr
    header, row = table.stdout.splitlines()[:2]
    assert "HELD" in header.split()
    assert row.split()[0] == "wire"
    assert row[header.index("ITEMS"):header.index("FAIL")].split() == ["8", "5"]  # items, held
    as_json = json.loads(run("feeds", "--json").stdout.splitlines()[0])
    assert as_json["held"] == 5 and as_json["items"] == 8


@pytest.mark.parametrize("where, yaml_text", [
    ("max_new_per_poll", "max_new_per_poll: 0\n"),
    ("feeds[0].max_new_per_poll", None),
    ("max_posts_per_hour", "max_posts_per_hour: -1\n"),
])
def test_bad_caps_are_refused_with_file_line_field(tmp_path, where, yaml_text):
    feed = "  - {name: wire, url: 'https://wire.example/feed.xml'" + (", max_new_per_poll: 0}" if yaml_text is None
                                                                     else "}")
    config = tmp_path / "feeds.yaml"
    config.write_text((yaml_text or "") + "topics:\n  tariff:\n    label: {en: Tariffs}\n    keywords: [tariff]\n"
                      f"feeds:\n{feed}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(config)
    assert err.value.field == where and err.value.line is not None


def _notice():
    from bot.models import Notice, Source
    heads = [Source(url=f"https://wire.example/t/{i}", feed="flood", title=f"US sets tariff <!channel> {i}")
             for i in range(5)]
    return Notice(id="n_1", feed="flood", count=42, topics=["tariff"], headlines=heads)


def test_each_adapter_renders_the_notice(tmp_path):
    from bot.adapters.discord.render import render_notice_embed
    from bot.adapters.slack.render import render_notice
    settings = make_settings(tmp_path, [])
    text, blocks = render_notice(_notice(), settings)
    assert text == "42 more items from feed flood matched Tariffs — held back, not briefed"
    shown = json.dumps(blocks, ensure_ascii=False)
    assert "matched *Tariffs*" in shown and "<https://wire.example/t/0|US sets tariff &lt;!channel&gt; 0>" in shown
    assert "… +37" in shown and "<!channel>" not in shown
    embed = render_notice_embed(_notice(), settings)
    assert embed.title.startswith("42 more items from feed flood matched **Tariffs**")
    assert "[US sets tariff <!channel> 0" in embed.description and "https://wire.example/t/4" in embed.description


async def test_a_retried_notice_is_written_once(tmp_path):
    from bot.adapters.jsonl import JsonlDeliverer
    from bot.models import Target
    deliverer, target = JsonlDeliverer(), Target("jsonl", str(tmp_path / "n.jsonl"))
    for attempt in (1, 2):  # the second try follows a crash after the line was written
        await deliverer.deliver_notice(target, _notice(), delivery_key="briefbot:notice:n_1:7", attempt=attempt)
    [line] = lines(tmp_path / "n.jsonl")
    assert line["notice"]["count"] == 42 and line["delivery_key"] == "briefbot:notice:n_1:7"


def test_chat_feed_lines_and_digests_show_what_was_held(tmp_path):
    from datetime import datetime, timezone

    from bot.adapters.discord.commands import render_feeds as discord_feeds
    from bot.adapters.discord.render import render_digest as discord_digest
    from bot.adapters.slack.commands import render_feeds as slack_feeds
    from bot.adapters.slack.render import render_digest as slack_digest
    from bot.commands import FeedHealth
    from bot.models import Digest, HeldBack
    now = datetime(2026, 3, 2, 8, tzinfo=timezone.utc)
    health = FeedHealth("flood", "ok", now, now, 0, None, None, 50, None, held=40)
    assert "held back 40" in json.dumps(slack_feeds([health], "UTC")[1])
    assert "40 held back" in discord_feeds([health])[0].embeds[0].description
    digest = Digest(name="adhoc", title={"en": "Digest"}, window_start=now - timedelta(hours=24), window_end=now,
                    held=[HeldBack(feed="flood", count=40, topics=["tariff"])])
    line = "40 more items from feed flood matched tariff — held back, not briefed"
    assert line in json.dumps(slack_digest(digest), ensure_ascii=False)
    assert line in discord_digest(digest)[0][0].description
