"""Follow-ups: a story already posted that a second and a third outlet join is told again, once per
new source and target, where it was posted — a reply in its Slack thread and a Discord reply, each
original updated to list every source; a message quoting the story for a Discord webhook; a line
naming the story for console and jsonl — unless the route says `follow_ups: off`.

Feeds, Slack and Discord are loopback fakes speaking the real wire formats; the bot is the real one
(poll, store, outbox dispatcher, adapters). A kill -9 between posting a follow-up and recording it is
in tests/faults/test_follow_up_crash.py."""

from __future__ import annotations

import asyncio
import io
import logging
import textwrap

import pytest

from bot.adapters.discord.deliver import DiscordDeliverer
from bot.adapters.slack.deliver import METADATA_EVENT_TYPE, SlackDeliverer
from bot.app.container import build_app, close_app, make_dispatcher, make_poller, parse_target
from bot.config import ConfigError, load_config
from bot.delivery.adapter import FollowUp
from bot.delivery.outbox import Dispatcher
from bot.models import Brief, Figure, Source, Target
from chat_fixtures import DISCORD_CHANNEL, DISCORD_TOKEN, discord_api, slack  # noqa: F401  (pytest fixtures)
from fakes.discord_api import FakeDiscord
from fakes.slack_api import BOT_TOKEN, FakeSlack, Scripted, mrkdwn_texts
from feedgen import Entry, atom, lines, make_env, make_settings, poll_and_deliver, rss
from loopback import Reply
from pg import any_db_url, pg_server, pg_url  # noqa: F401  (pytest fixtures)
from sqlalchemy import update

from bot.models import utcnow
from bot.store import schema as t

SLACK_CHANNEL = "C0BRIEFS1"
RSS, ATOM = "application/rss+xml", "application/atom+xml"

# One story, three outlets: each later one brings a figure the earlier ones did not have.
FIRST = Entry("China approves rare earth magnet export licences for 12 European firms",
              "China's commerce ministry approved rare earth magnet export licences for 12 European companies on "
              "Friday. NdPr oxide prices rose 4.5% to 615,000 yuan per tonne after the news.",
              guid="wire-1", link="https://wire.example/magnets")
SECOND = Entry("Beijing grants magnet export permits to a dozen EU companies",
               "The Commerce Ministry in Beijing granted rare earth magnet export licences to 12 European firms, "
               "covering 5,000 tonnes of magnets a year. NdPr oxide gained 4.5% to 615,000 yuan per tonne.",
               guid="desk-9", link="https://desk.example/permits")
THIRD = Entry("商务部批准12家欧洲企业稀土磁体出口许可", "商务部表示已批准12家欧洲企业的稀土磁体出口许可申请。氧化镨钕价格上涨4.5%，"
              "报61.5万元/吨。业内人士称许可期限为18个月。", guid="hs-1", link="https://zh.example/xuke.html")


class Outlets:
    """Three feeds of the loopback server; each serves its outlet's entry once it has been published."""

    def __init__(self, server) -> None:
        self.server = server
        for name in ("a", "b", "c"):
            self._serve(name, [])

    def _serve(self, name: str, entries: list[Entry]) -> None:
        body, kind = (atom(entries), ATOM) if name == "b" else (rss(entries), RSS)
        self.server.route(f"/{name}.xml", Reply(200, body, content_type=kind))

    def publish(self, name: str) -> None:
        self._serve(name, [{"a": FIRST, "b": SECOND, "c": THIRD}[name]])

    def feeds(self) -> list[dict]:
        return [{"name": n, "url": self.server.url(f"/{n}.xml")} for n in ("a", "b", "c")]


def chat_env(db_url: str, slack: FakeSlack, discord_api: FakeDiscord):
    return make_env(db_url, SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_API_BASE_URL=slack.api_url,
                    DISCORD_BOT_TOKEN=DISCORD_TOKEN, DISCORD_API_BASE_URL=discord_api.api_base)


def thread_keys(slack: FakeSlack, parent_ts: str) -> list[str]:
    return [m["metadata"]["event_payload"]["key"] for m in slack.thread(SLACK_CHANNEL, parent_ts)
            if m.get("metadata", {}).get("event_type") == METADATA_EVENT_TYPE]


def top_level(slack: FakeSlack) -> list[dict]:
    return [m for m in slack.posted(SLACK_CHANNEL) if m.get("thread_ts", m["ts"]) == m["ts"]]


async def test_second_and_third_outlet_reply_in_threads_and_update_the_originals(http_server, tmp_path, any_db_url,
                                                                                 slack, discord_api):
    outlets = Outlets(http_server)
    targets = [f"slack:{SLACK_CHANNEL}", f"discord:{DISCORD_CHANNEL}", "jsonl:out/briefs.jsonl", "console"]
    console = io.StringIO()
    app = build_app(make_settings(tmp_path, outlets.feeds(), targets=targets),
                    chat_env(any_db_url, slack, discord_api), console_stream=console)
    try:
        outlets.publish("a")
        await poll_and_deliver(app)
        [parent] = top_level(slack)
        [posted] = discord_api.messages
        outlets.publish("b")
        await poll_and_deliver(app)
        outlets.publish("c")
        reports = await poll_and_deliver(app)
        await poll_and_deliver(app)  # nothing new: nothing is told twice
    finally:
        await close_app(app)
    assert sum(r.merged for r in reports) == 1
    [brief] = app.store.latest_briefs("rare-earth")
    assert [s.feed for s in brief.sources] == ["a", "b", "c"]

    # Slack: one story message, two replies in its thread (one per outlet), the original updated twice.
    assert top_level(slack) == [parent]
    replies = slack.thread(SLACK_CHANNEL, parent["ts"])
    assert len(replies) == 2 and len(set(thread_keys(slack, parent["ts"]))) == 2
    assert "Also reported by b (en)" in replies[0]["text"] and "5,000 tonnes" in replies[0]["text"]
    assert "Also reported by c (zh)" in replies[1]["text"] and "新增数字" in replies[1]["text"]
    assert "5,000 tonnes" not in replies[1]["text"]  # only figures the channel has not seen
    updates = slack.calls_to("chat.update")
    assert len(updates) == 2 and {u.params["ts"] for u in updates} == {parent["ts"]}
    original = "\n".join(mrkdwn_texts(slack.posted(SLACK_CHANNEL)[0]["blocks"]))
    assert all(host in original for host in ("wire.example", "desk.example", "zh.example"))
    assert parent["metadata"]["event_payload"]["key"].startswith("briefbot:brief:")

    # Discord: the brief, two replies referencing it, the original edited to list three sources.
    replies = [m for m in discord_api.messages if m["payload"].get("message_reference")]
    assert len(discord_api.messages) == 3 and len(replies) == 2
    assert {r["payload"]["message_reference"]["message_id"] for r in replies} == {posted["id"]}
    assert all(discord_api.message(r["id"])["type"] == 19 for r in replies)
    assert [e["message_id"] for e in discord_api.message_edits] == [posted["id"], posted["id"]]
    fields = [f["name"] for f in discord_api.message(posted["id"])["embeds"][0]["fields"]]
    assert "Sources / 来源 (3)" in fields
    assert [r["payload"]["embeds"][0]["title"] for r in replies] == ["Also reported by b (en)",
                                                                     "Also reported by c (zh)"]

    # jsonl and console: a line of its own per follow-up, naming the story.
    written = lines(tmp_path / "out" / "briefs.jsonl")
    assert [w["id"] for w in written[:1]] == [brief.id]
    assert [(w["follow_up"]["parent"], w["follow_up"]["source"]["feed"]) for w in written[1:]] == \
        [(brief.id, "b"), (brief.id, "c")]
    assert [f["text"] for f in written[1]["follow_up"]["figures"]] == ["5,000 tonnes"]
    told = [line for line in console.getvalue().splitlines() if line.startswith("↳")]
    assert len(told) == 2 and all(line.startswith(f"↳ {brief.id} (") for line in told)

    by_kind = {}
    for row in app.store.outbox_rows():
        by_kind.setdefault(row.kind, []).append(row)
    assert len(by_kind["brief"]) == 4 and len(by_kind["follow_up"]) == 8
    assert all(r.status == "sent" and r.attempts == 1 for rows in by_kind.values() for r in rows)


async def test_webhook_quotes_the_story_and_a_route_with_follow_ups_off_gets_none(http_server, tmp_path, db_url,
                                                                                  slack, discord_api):
    outlets = Outlets(http_server)
    webhook = discord_api.add_webhook(555000111, "hook-token-abc")
    routes = [{"name": "threads", "to": [f"discord-webhook:{webhook}"]},
              {"name": "quiet", "to": ["jsonl:out/quiet.jsonl"], "follow_ups": "off"}]
    app = build_app(make_settings(tmp_path, outlets.feeds(), routes=routes), chat_env(db_url, slack, discord_api))
    try:
        outlets.publish("a")
        await poll_and_deliver(app)
        outlets.publish("b")
        await poll_and_deliver(app)
    finally:
        await close_app(app)
    brief = app.store.latest_briefs("rare-earth")[0]
    [story, told] = discord_api.webhook_executions
    assert "message_reference" not in told["payload"]
    embed = told["payload"]["embeds"][0]
    assert embed["title"] == "Also reported by b (en)"
    assert embed["description"].startswith(f"> {brief.title['en']}") and "desk.example/permits" in embed["description"]
    assert story["payload"]["embeds"][0]["title"] == brief.title["en"]
    assert [w["id"] for w in lines(tmp_path / "out" / "quiet.jsonl")] == [brief.id]
    assert [r.target for r in app.store.outbox_rows() if r.kind == "follow_up"] == [f"discord-webhook:{webhook}"]


async def test_a_reply_whose_answer_was_lost_is_found_in_the_thread_not_posted_again(http_server, tmp_path, db_url,
                                                                                      slack, discord_api):
    outlets = Outlets(http_server)
    app = build_app(make_settings(tmp_path, outlets.feeds(), targets=[f"slack:{SLACK_CHANNEL}"]),
                    chat_env(db_url, slack, discord_api))
    try:
        outlets.publish("a")
        await poll_and_deliver(app)
        [parent] = top_level(slack)
        # The reply lands, but Slack's answer is a 500: the row goes back to the outbox.
        slack.script("chat.postMessage", *[Scripted(status=500, error="internal_error", land_anyway=True)] * 3)
        outlets.publish("b")
        await poll_and_deliver(app)
        [row] = [r for r in app.store.outbox_rows() if r.kind == "follow_up"]
        assert row.status == "pending" and row.attempts == 1 and "chat.postMessage" in row.last_error
        with app.store.engine.begin() as c:  # the backoff has passed (time travel)
            c.execute(update(t.outbox).where(t.outbox.c.id == row.id).values(next_attempt_at=utcnow()))
        assert await make_dispatcher(app).dispatch_once() == 1
    finally:
        await close_app(app)
    assert len(slack.thread(SLACK_CHANNEL, parent["ts"])) == 1
    assert [c.params["ts"] for c in slack.calls_to("conversations.replies")] == [parent["ts"]]
    assert len(slack.calls_to("chat.update")) == 1
    [row] = [r for r in app.store.outbox_rows() if r.kind == "follow_up"]
    assert row.status == "sent" and row.attempts == 2


async def test_two_workers_dispatching_at_once_tell_each_outlet_once(http_server, tmp_path, any_db_url, slack,
                                                                     discord_api):
    outlets = Outlets(http_server)
    app = build_app(make_settings(tmp_path, outlets.feeds(), targets=[f"slack:{SLACK_CHANNEL}"]),
                    chat_env(any_db_url, slack, discord_api))
    try:
        outlets.publish("a")
        await poll_and_deliver(app)
        [parent] = top_level(slack)
        outlets.publish("b")
        await make_poller(app).poll_all(force=True)
        # Both look for follow-ups and queue the same one; both then claim what is due.
        workers = [Dispatcher(app.store, app.deliverers, app.adapters.parse_target, f"worker-{n}") for n in (1, 2)]
        sent = await asyncio.gather(*(w.dispatch_once() for w in workers))
        assert sorted(sent) == [0, 1] and await asyncio.gather(*(w.dispatch_once() for w in workers)) == [0, 0]
    finally:
        await close_app(app)
    assert len(slack.thread(SLACK_CHANNEL, parent["ts"])) == 1
    assert [(r.kind, r.status, r.attempts) for r in app.store.outbox_rows()] == [("brief", "sent", 1),
                                                                                ("follow_up", "sent", 1)]


def test_follow_ups_setting_is_validated_with_its_line(tmp_path):
    path = tmp_path / "feeds.yaml"
    path.write_text(textwrap.dedent("""\
        topics:
          tariff:
            label: {en: Tariffs, zh: 关税}
            keywords: [tariff]
        routes:
          - name: ops
            to: [console]
            follow_ups: sometimes
        """), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path, parse_target)
    message = str(info.value)
    assert "feeds.yaml:8" in message and "routes[0].follow_ups" in message and "thread" in message
    path.write_text(path.read_text(encoding="utf-8").replace("sometimes", "off"), encoding="utf-8")
    settings = load_config(path, parse_target)
    console = parse_target("console")
    assert settings.routes[0].follow_ups == "off" and not settings.follow_ups_for(console, ["tariff"])


def follow_up_of_gone_story(parent_ref: str) -> FollowUp:
    """A follow-up whose story message was deleted from the channel meanwhile."""
    first = Source(url="https://wire.example/magnets", feed="a", title=FIRST.title)
    second = Source(url="https://desk.example/permits", feed="b", title=SECOND.title)
    brief = Brief(id="b_0123456789abcdef", topics=["rare-earth"], title={"en": FIRST.title}, summary={"en": "…"},
                  figures=[Figure(text="5,000 tonnes", value=5000, unit="t")], sources=[first, second],
                  mode="extractive")
    return FollowUp(brief=brief, source=second, figures=brief.figures, parent_ref=parent_ref,
                    parent_key="briefbot:brief:b_0123456789abcdef:1")


async def test_a_deleted_story_message_still_gets_its_reply_and_a_warning(slack, discord_api, caplog):
    caplog.set_level(logging.WARNING, logger="briefbot")
    slack_deliverer, channel = SlackDeliverer(BOT_TOKEN, slack.api_url), Target("slack", SLACK_CHANNEL)
    story = follow_up_of_gone_story("")
    parent_ts = await slack_deliverer.deliver_brief(channel, story.brief, delivery_key="k0", attempt=1)
    slack.script("chat.update", Scripted(error="message_not_found"))  # deleted meanwhile
    ts = await slack_deliverer.deliver_follow_up(channel, follow_up_of_gone_story(parent_ts), delivery_key="k1",
                                                 attempt=1)
    assert [m["ts"] for m in slack.thread(SLACK_CHANNEL, parent_ts)] == [ts]

    discord = DiscordDeliverer(DISCORD_TOKEN, discord_api.api_base)
    try:
        message_id = await discord.deliver_follow_up(Target("discord", DISCORD_CHANNEL),
                                                     follow_up_of_gone_story("1100000000000009999"),
                                                     delivery_key="k2", attempt=1)
    finally:
        await discord.aclose()
    # Asked not to fail when the story is gone, Discord posts the reply as a plain message.
    assert discord_api.message(message_id)["type"] == 0 and discord_api.message_edits == []
    assert [r.path for r in discord_api.requests if r.method == "PATCH"] == \
        [f"/channels/{DISCORD_CHANNEL}/messages/1100000000000009999"]
    gone = [r.getMessage() for r in caplog.records if "cannot be updated" in r.getMessage()]
    assert len(gone) == 2 and parent_ts in gone[0] and "1100000000000009999" in gone[1]


async def test_a_reload_that_turns_follow_ups_off_applies_without_restart(http_server, tmp_path, db_url):
    """The dispatcher reads `follow_ups` from the settings in force, so a reload applies it at once."""
    import json

    from bot.app.container import default_registry
    from bot.app.runner import BotRunner
    from feedgen import TOPICS

    outlets = Outlets(http_server)
    config = tmp_path / "feeds.yaml"

    def write_config(follow_ups: str) -> None:
        route = {"name": "all", "to": ["jsonl:out/briefs.jsonl"], "follow_ups": follow_ups}
        config.write_text(json.dumps({"languages": ["en", "zh"], "topics": TOPICS, "feeds": outlets.feeds(),
                                      "routes": [route]}), encoding="utf-8")

    def told() -> list[str]:
        return [x["follow_up"]["source"] for x in lines(tmp_path / "out" / "briefs.jsonl") if "follow_up" in x]

    write_config("thread")
    app = build_app(load_config(config, default_registry().parser_for(config)), make_env(db_url))
    runner = BotRunner(app, role="all")
    try:
        outlets.publish("a")
        await poll_and_deliver(app)
        write_config("off")
        assert await runner.reload_config() is True
        outlets.publish("b")
        await poll_and_deliver(app)
        assert [s.feed for s in app.store.latest_briefs("rare-earth")[0].sources] == ["a", "b"]
        assert told() == []
        write_config("thread")
        assert await runner.reload_config() is True
        outlets.publish("c")
        await poll_and_deliver(app)
    finally:
        await close_app(app)
    # Switched on again, the channel is told of each source it has not been shown.
    assert [s["feed"] for s in told()] == ["b", "c"]
