"""Subscriptions and follows through the service the chat adapters, the CLI and the dashboard call:
a URL is read once before it is accepted (SSRF guard, non-feeds refused), chat-made feeds and
follows are merged with feeds.yaml and polled and routed like the file's own."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import timezone

import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from feedgen import Entry, lines, make_env, make_settings, poll_and_deliver, rss
from loopback import Reply
from waits import async_wait_until

from bot.adapters.discord.commands import discord_admin_roles
from bot.adapters.slack.commands import slack_admins
from bot.app.container import build_app, close_app, default_registry, parse_target
from bot.app.runner import BotRunner
from bot.config import ConfigError, load_config
from bot.models import Target
from bot.store import Store
from bot.subscriptions import FROM_CHAT, FROM_FILE, ChatConfig, SubscriptionService, merge

REGISTRY = default_registry()

CHANNEL = Target("slack", "C0SUBS01")
OTHER = Target("slack", "C0OTHER1")

WIRE = [Entry("US raises tariffs on steel imports", "Tariffs rise to 25% on steel.", guid="t1"),
        Entry("New tariff schedule for cars", "A tariff of 10% applies to cars.", guid="t2"),
        Entry("Tariff truce extended", "The trade war truce holds; tariffs paused.", guid="t3"),
        Entry("Gallium prices climb", "Gallium up 5% on export limits.", guid="g1"),
        Entry("Local bakery opens", "Bread and cakes.", guid="b1")]


def _service(settings, store, allow_private=True):
    return SubscriptionService(lambda: settings, store, allow_private=allow_private)


def _store(db_url) -> Store:
    store = Store(db_url)
    store.create()
    return store


def test_subscribe_reads_the_feed_once_and_says_what_it_found(tmp_path, db_url, http_server):
    url = http_server.route("/wire.xml", Reply(body=rss(WIRE), content_type="application/rss+xml"))
    settings = make_settings(tmp_path, [])
    store = _store(db_url)
    change = asyncio.run(_service(settings, store).subscribe(url, ["tariff"], CHANNEL, "slack:U1"))
    assert change.ok and change.code == "subscribed", change.message
    assert change.trial.items == 5 and change.trial.matching == {"tariff": 3}
    assert "5 items, 3 match *tariff*; new matching items will be posted here" in change.message
    assert len(http_server.requests_to("/wire.xml")) == 1
    [row] = store.subscriptions()
    assert (row.name, row.url, row.topics, row.target, row.created_by) == (
        change.feed, url, ("tariff",), "slack:C0SUBS01", "slack:U1")
    assert [(f.topic, f.target) for f in store.follows()] == [("tariff", "slack:C0SUBS01")]
    # The poller's claims need the feed's row.
    assert store.feed_state(change.feed).url == url


def test_subscribe_takes_topic_labels_and_refuses_unknown_topics(tmp_path, db_url, http_server):
    url = http_server.route("/wire.xml", Reply(body=rss(WIRE), content_type="application/rss+xml"))
    store = _store(db_url)
    service = _service(make_settings(tmp_path, []), store)
    refused = asyncio.run(service.subscribe(url, ["tarifs"], CHANNEL, "slack:U1"))
    assert not refused.ok and refused.code == "unknown-topic"
    assert "tarifs" in refused.message and "rare-earth, tariff" in refused.message
    assert store.subscriptions() == [] and http_server.requests_to("/wire.xml") == []
    accepted = asyncio.run(service.subscribe(url, ["稀土"], CHANNEL, "slack:U1"))
    assert accepted.ok and accepted.topics == ("rare-earth",) and accepted.trial.matching == {"rare-earth": 1}


def test_subscribe_refused_by_the_ssrf_guard(tmp_path, db_url, http_server):
    url = http_server.route("/wire.xml", Reply(body=rss(WIRE), content_type="application/rss+xml"))
    store = _store(db_url)
    change = asyncio.run(_service(make_settings(tmp_path, []), store, allow_private=False)
                         .subscribe(url, ["tariff"], CHANNEL, "slack:U1"))
    assert not change.ok and change.code == "blocked"
    assert "private or local network address" in change.message and "127.0.0.1" in change.message
    assert http_server.requests_to("/wire.xml") == []
    assert store.subscriptions() == [] and store.follows() == []


def test_subscribe_refuses_a_page_that_is_not_a_feed(tmp_path, db_url, http_server):
    url = http_server.route("/news", Reply(body=b"<html><body><p>Tariffs!</p></body></html>",
                                           content_type="text/html"))
    store = _store(db_url)
    change = asyncio.run(_service(make_settings(tmp_path, []), store).subscribe(url + "?key=s3cret", [], CHANNEL,
                                                                                 "slack:U1"))
    assert not change.ok and change.code == "not-a-feed"
    assert "is not a feed" in change.message and "HTML page" in change.message
    assert "s3cret" not in change.message
    assert store.subscriptions() == []


def test_subscribe_refuses_an_unreachable_url_and_a_bad_one(tmp_path, db_url, http_server):
    url = http_server.route("/gone.xml", Reply(404, b"no", content_type="text/plain"))
    store = _store(db_url)
    service = _service(make_settings(tmp_path, []), store)
    missing = asyncio.run(service.subscribe(url, [], CHANNEL, "slack:U1"))
    assert not missing.ok and missing.code == "unreachable" and "404" in missing.message
    bad = asyncio.run(service.subscribe("ftp://example.com/feed", [], CHANNEL, "slack:U1"))
    assert not bad.ok and bad.code == "invalid" and "http(s)" in bad.message
    assert store.subscriptions() == []


def test_a_url_already_read_is_not_added_twice(tmp_path, db_url, http_server):
    url = http_server.route("/wire.xml", Reply(body=rss(WIRE), content_type="application/rss+xml"))
    settings = make_settings(tmp_path, [{"name": "wire", "url": url, "topics": ["tariff"]}])
    store = _store(db_url)
    change = asyncio.run(_service(settings, store).subscribe(url, [], OTHER, "slack:U1"))
    assert change.ok and change.code == "already" and change.feed == "wire"
    assert "from feeds.yaml" in change.message
    assert store.subscriptions() == [] and http_server.requests_to("/wire.xml") == []
    # The channel follows what the feed produces.
    assert [(f.topic, f.target) for f in store.follows()] == [("tariff", "slack:C0OTHER1")]


def test_chat_feed_is_polled_and_its_topic_posted_to_the_channel_that_subscribed(tmp_path, db_url, http_server):
    url = http_server.route("/wire.xml", Reply(body=rss(WIRE), content_type="application/rss+xml"))
    settings = make_settings(tmp_path, [], targets=["jsonl:out/file.jsonl"])
    store = _store(db_url)
    follow_target = Target("jsonl", str(tmp_path / "out" / "chat.jsonl"))
    change = asyncio.run(_service(settings, store).subscribe(url, ["tariff"], follow_target, "cli:ops"))
    assert change.ok, change.message

    async def run() -> None:
        app = build_app(settings, make_env(db_url), store=store)
        try:
            assert [f.name for f in app.settings.feeds] == [change.feed]
            await poll_and_deliver(app)
        finally:
            await close_app(app)

    asyncio.run(run())
    chat = lines(tmp_path / "out" / "chat.jsonl")
    assert sorted(d["title"]["en"] for d in chat) == sorted(e.title for e in WIRE[:3])
    # The file's route still gets every topic, the chat-made feed's included.
    assert len(lines(tmp_path / "out" / "file.jsonl")) == 3


def test_unsubscribe_removes_only_chat_made_feeds(tmp_path, db_url, http_server):
    url = http_server.route("/wire.xml", Reply(body=rss(WIRE), content_type="application/rss+xml"))
    settings = make_settings(tmp_path, [{"name": "baseline", "url": "https://example.com/rss.xml"}])
    store = _store(db_url)
    service = _service(settings, store)
    added = asyncio.run(service.subscribe(url, ["tariff"], CHANNEL, "slack:U1"))
    refused = service.unsubscribe("baseline", "slack:U1")
    assert not refused.ok and refused.code == "in-feeds.yaml"
    assert refused.message == "baseline is from feeds.yaml; an operator removes it there."
    assert service.unsubscribe("nothing-here", "slack:U1").code == "not-found"
    done = service.unsubscribe(url, "slack:U1")
    assert done.ok and done.feed == added.feed and store.subscriptions() == []
    merged = merge(settings, ChatConfig.load(store), parse_target)
    assert [f.name for f in merged.feeds] == ["baseline"]


def test_follow_unfollow_and_list(tmp_path, db_url):
    settings = make_settings(tmp_path, [{"name": "baseline", "url": "https://example.com/rss.xml",
                                         "topics": ["tariff"]}], targets=["slack:C0FILE01"])
    store = _store(db_url)
    service = _service(settings, store)
    assert service.follow("Rare earths", CHANNEL, "slack:U1").code == "followed"
    assert service.follow("rare-earth", CHANNEL, "slack:U1").code == "already"
    from_file = service.follow("tariff", Target("slack", "C0FILE01"), "slack:U1")
    assert from_file.ok and from_file.code == "already" and "route all in feeds.yaml" in from_file.message
    assert service.follow("weather", CHANNEL, "slack:U1").code == "unknown-topic"

    listing = service.listing(CHANNEL)
    assert [(f.topic, f.origin, f.source) for f in listing.follows] == [("rare-earth", FROM_CHAT, "slack:U1")]
    # The file's feed may produce every topic it lists: tariff only, so nothing feeds rare-earth here.
    assert listing.feeds == ()
    everything = service.listing(None)
    assert {(f.topic, f.target, f.origin) for f in everything.follows} == {
        ("rare-earth", "slack:C0SUBS01", FROM_CHAT), ("tariff", "slack:C0FILE01", FROM_FILE),
        ("rare-earth", "slack:C0FILE01", FROM_FILE)}
    assert [(f.name, f.origin, f.status) for f in everything.feeds] == [("baseline", FROM_FILE, "never polled")]

    merged = merge(settings, ChatConfig.load(store), parse_target)
    assert merged.targets_for(["rare-earth"]) == [Target("slack", "C0FILE01"), CHANNEL]
    assert merged.targets_for(["tariff"]) == [Target("slack", "C0FILE01")]

    refused = service.unfollow("tariff", Target("slack", "C0FILE01"), "slack:U1")
    assert not refused.ok and refused.code == "in-feeds.yaml"
    assert service.unfollow("rare-earth", CHANNEL, "slack:U1").code == "unfollowed"
    assert service.unfollow("rare-earth", CHANNEL, "slack:U1").code == "not-found"
    assert merge(settings, ChatConfig.load(store), parse_target).targets_for(["rare-earth"]) == [Target("slack", "C0FILE01")]


def test_a_chat_made_feed_whose_topics_the_file_dropped_is_listed_as_not_polled(tmp_path, db_url):
    settings = make_settings(tmp_path, [{"name": "baseline", "url": "https://example.com/rss.xml"}],
                             targets=["slack:C0FILE01"])
    store = _store(db_url)
    store.add_subscription("gone-topic", "https://wire.example/a.xml?key=s3cret", ["weather"], str(CHANNEL), "slack:U1")
    store.add_subscription("kept", "https://wire.example/b.xml", ["weather", "tariff"], str(CHANNEL), "slack:U1")
    feeds = {f.name: f for f in _service(settings, store).listing(None).feeds}
    assert [f.name for f in merge(settings, ChatConfig.load(store), parse_target).feeds] == ["baseline", "kept"]
    assert (feeds["kept"].status, feeds["kept"].topics) == ("never polled", ("tariff",))
    gone = feeds["gone-topic"]
    assert (gone.origin, gone.status, gone.problem) == (
        FROM_CHAT, "not polled", "feeds.yaml no longer defines its topics weather")


async def test_a_running_bot_applies_changes_made_here_and_by_other_processes(tmp_path, db_url, http_server):
    url = http_server.route("/wire.xml", Reply(body=rss(WIRE), content_type="application/rss+xml"))
    settings = make_settings(tmp_path, [], targets=["jsonl:out/file.jsonl"])
    app = build_app(settings, make_env(db_url))
    runner = BotRunner(app)
    runner.scheduler = AsyncIOScheduler(timezone=timezone.utc)  # never started: its jobs stay pending
    try:
        # Another process (the CLI, a web process) subscribes: this bot's next check applies it.
        elsewhere = SubscriptionService(lambda: settings, app.store, allow_private=True)
        change = await elsewhere.subscribe(url, ["tariff"], Target("jsonl", "out/channel.jsonl"), "cli:ops")
        assert change.ok, change.message
        assert runner.scheduler.get_job(f"poll:{change.feed}") is None
        assert await runner.refresh_subscriptions() is True
        assert await runner.refresh_subscriptions() is False  # nothing new since
        assert runner.scheduler.get_job(f"poll:{change.feed}") is not None
        assert runner.poller.settings.feed(change.feed) is not None

        # A change through this bot's own service applies at once.
        follower = Target("jsonl", str(tmp_path / "out" / "rare.jsonl"))
        assert app.subscriptions.follow("rare-earth", follower, "slack:U1").ok
        await async_wait_until(lambda: follower in app.settings.targets_for(["rare-earth"]), "the follow to apply")
        assert app.subscriptions.unsubscribe(change.feed, "slack:U1").ok
        await async_wait_until(lambda: runner.scheduler.get_job(f"poll:{change.feed}") is None,
                               "the unsubscribed feed's poll job to go")
        assert app.settings.feed(change.feed) is None
    finally:
        await close_app(app)


def test_admins_setting_is_checked_at_load_and_by_each_platform(tmp_path):
    config = tmp_path / "feeds.yaml"
    topics = "topics:\n  tariff: {label: {en: Tariffs, zh: 关税}, keywords: [tariff]}\n"
    config.write_text(topics + "admins:\n  - slack:U0123ABCD\n  - '#trade-desk'\n", encoding="utf-8")
    with pytest.raises(ConfigError) as refused:
        load_config(config, parse_target, REGISTRY.check_admin)
    assert str(refused.value).startswith(f"{config}:5: admins[1]: an admin is PLATFORM:ID")
    assert "'#trade-desk'" in str(refused.value)

    # Each platform's adapter checks its own ID format: an entry that could never match anyone is
    # refused when the file is loaded (`briefbot check`, start, reload), naming its line.
    for line, entry, problem in [
            (5, "slack:C0CHANNEL", "on slack: not a Slack user ID (U…, W…) or user-group ID (S…)"),
            (6, "discord:moderators", "on discord: not a Discord role ID (a number of 15-21 digits)"),
            (7, "teams:A1B2", "names no chat platform briefbot knows"),
            (7, "jsonl:ops", "on jsonl: it takes no chat commands")]:
        good = ["slack:U0123ABCD", "slack:S0GROUP1", "discord:112233445566778899"]
        entries = good[:line - 4] + [entry] + good[line - 4:]
        config.write_text(topics + "admins:\n" + "".join(f"  - {e}\n" for e in entries), encoding="utf-8")
        with pytest.raises(ConfigError) as refused:
            load_config(config, parse_target, REGISTRY.check_admin)
        assert str(refused.value).startswith(f"{config}:{line}: admins[{line - 4}]: admin {entry!r} ")
        assert problem in str(refused.value)
    proc = subprocess.run([sys.executable, "-m", "bot", "--config", str(config), "check"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"{config}:7: admins[3]: admin 'jsonl:ops'" in proc.stderr

    config.write_text(topics + "admins: [slack:U0123ABCD, slack:S0GROUP1, discord:112233445566778899]\n",
                      encoding="utf-8")
    settings = load_config(config, parse_target, REGISTRY.check_admin)
    assert slack_admins(settings) == (["U0123ABCD"], ["S0GROUP1"])
    assert discord_admin_roles(settings) == ["112233445566778899"]
