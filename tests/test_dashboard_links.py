"""Message links on the dashboard: a brief posted through the real dispatcher and adapters to Slack, a
Discord channel and a Discord webhook (loopback fakes speaking the real APIs) shows, on its page, a
link to each posted message in the form each platform uses; a jsonl delivery shows its id and no link.
Links are served from the database alone (the dashboard host has no chat credentials), and only
http(s) links are drawn as links."""

from __future__ import annotations

import html
import logging
import re

from chat_fixtures import DISCORD_CHANNEL, DISCORD_TOKEN, discord_api, slack  # noqa: F401  (pytest fixtures)
from fakes.discord_api import GUILD_ID, WEBHOOK_CHANNEL_ID
from fakes.slack_api import BOT_TOKEN, Scripted
from feedgen import Entry, make_env, make_settings, poll_and_deliver, rss
from loopback import Reply
from pg import any_db_url, pg_server, pg_url  # noqa: F401  (pytest fixtures)
from test_dashboard_support import TOKEN, BotHttpServer, Client, make_app, seed, utc_now

from bot.app.container import build_app, close_app
from bot.store import Store

SLACK_CHANNEL = "C0BRIEFS1"
WEBHOOK_ID, WEBHOOK_TOKEN = "555000111222333444", "hook-token-links-abc"
BEARER = {"Authorization": f"Bearer {TOKEN}"}

MAGNETS = Entry("China approves rare earth magnet export licences for 12 European firms",
                "China's commerce ministry approved rare earth magnet export licences for 12 European companies on "
                "Friday. NdPr oxide prices rose 4.5% to 615,000 yuan per tonne after the news.",
                guid="wire-1", link="https://wire.example/magnets")
STEEL = Entry("Canada matches US steel tariffs with a 25% levy on Chinese imports",
              "Canada will impose a 25% tariff on steel and aluminium imported from China from October 15, the "
              "finance minister said, matching tariffs announced by Washington in May.",
              guid="wire-2", link="https://wire.example/steel")

# A second outlet of MAGNETS' story: it joins the story and is told as a follow-up.
PERMITS = Entry("Beijing grants magnet export permits to a dozen EU companies",
                "The Commerce Ministry in Beijing granted rare earth magnet export licences to 12 European firms, "
                "covering 5,000 tonnes of magnets a year. NdPr oxide gained 4.5% to 615,000 yuan per tonne.",
                guid="desk-9", link="https://desk.example/permits")


def message_cells(page: str) -> dict[str, str]:
    """Each delivery row of a page: its target as shown -> the inside of its message cell."""
    rows = re.findall(r'<tr class="delivery status-sent" id="delivery-\d+">(.*?)</tr>', page, re.S)
    out = {}
    for row in rows:
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        out[html.unescape(cells[2])] = re.search(r'<td class="message">(.*?)</td>', row, re.S).group(1)
    return out


def link_of(cell: str) -> tuple[str, str] | None:
    """(href, text) of the message cell's link, or None when it holds none."""
    match = re.fullmatch(r'<a class="message-link" href="([^"]+)" rel="noopener noreferrer nofollow">([^<]*)</a>',
                         cell)
    return (html.unescape(match.group(1)), match.group(2)) if match else None


async def post_stories(tmp_path, db_url, http_server, slack, discord_api, targets,
                       *rounds: dict[str, list[Entry]]) -> None:
    """The bot as `briefbot poll --once` runs it, with Slack and Discord credentials: one poll and
    delivery per round, each feed serving the entries the round gives it."""
    names = sorted({name for entries in rounds for name in entries})
    feeds = [{"name": name, "url": http_server.url(f"/{name}.xml")} for name in names]
    env = make_env(db_url, SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_API_BASE_URL=slack.api_url,
                   DISCORD_BOT_TOKEN=DISCORD_TOKEN, DISCORD_API_BASE_URL=discord_api.api_base)
    app = build_app(make_settings(tmp_path, feeds, targets=targets), env)
    try:
        for entries in rounds:
            for name in names:
                http_server.route(f"/{name}.xml", Reply(200, rss(entries.get(name, [])),
                                                        content_type="application/rss+xml"))
            await poll_and_deliver(app)
    finally:
        await close_app(app)


def brief_page(tmp_path, db_url, brief_id: str) -> str:
    """The brief's page as a dashboard host serves it: the shared database, no chat credentials."""
    with BotHttpServer(make_app(tmp_path, db_url, BRIEFBOT_WEB_TOKEN=TOKEN)) as server:
        reply = Client(server.port).get(f"/briefs/{brief_id}", headers=BEARER)
    assert reply.status == 200
    return reply.text


async def test_brief_page_links_each_slack_and_discord_message_and_not_jsonl(http_server, tmp_path, any_db_url,
                                                                            slack, discord_api):
    webhook = discord_api.add_webhook(WEBHOOK_ID, WEBHOOK_TOKEN)
    targets = [f"slack:{SLACK_CHANNEL}", f"discord:{DISCORD_CHANNEL}", f"discord-webhook:{webhook}",
               "jsonl:out/briefs.jsonl"]
    await post_stories(tmp_path, any_db_url, http_server, slack, discord_api, targets, {"wire": [MAGNETS, STEEL]})

    # What each link needs beyond a message's id is asked once, however many messages are posted.
    assert len(slack.posted(SLACK_CHANNEL)) == 2 and len(slack.calls_to("auth.test")) == 1
    assert len(discord_api.requests_to(f"/channels/{DISCORD_CHANNEL}", "GET")) == 1
    assert len(discord_api.requests_to(f"/webhooks/{WEBHOOK_ID}/{WEBHOOK_TOKEN}", "GET")) == 1

    store = Store(any_db_url)
    try:
        [magnets] = store.latest_briefs("rare-earth")
        rows = {r.target: r for r in store.outbox_rows(ref_id=magnets.id)}
    finally:
        store.close()
    slack_ts = rows[f"slack:{SLACK_CHANNEL}"].external_id
    assert slack_ts == slack.posted(SLACK_CHANNEL)[0]["ts"]
    channel_message = rows[f"discord:{DISCORD_CHANNEL}"].external_id
    webhook_message = rows[f"discord-webhook:{webhook}"].external_id
    assert channel_message == discord_api.messages[0]["id"]
    assert webhook_message == discord_api.webhook_executions[0]["id"]

    cells = message_cells(brief_page(tmp_path, any_db_url, magnets.id))
    assert len(cells) == 4, cells
    assert link_of(cells[f"slack:{SLACK_CHANNEL}"]) == (
        f"https://briefbot-test.slack.com/archives/{SLACK_CHANNEL}/p{slack_ts.replace('.', '')}", slack_ts)
    assert link_of(cells[f"discord:{DISCORD_CHANNEL}"]) == (
        f"https://discord.com/channels/{GUILD_ID}/{DISCORD_CHANNEL}/{channel_message}", channel_message)
    [webhook_shown] = [target for target in cells if target.startswith("discord-webhook:")]
    assert WEBHOOK_TOKEN not in webhook_shown  # the webhook's token stays hidden
    assert link_of(cells[webhook_shown]) == (
        f"https://discord.com/channels/{GUILD_ID}/{WEBHOOK_CHANNEL_ID}/{webhook_message}", webhook_message)
    jsonl_cell = cells["jsonl:out/briefs.jsonl"]
    assert link_of(jsonl_cell) is None and "<a" not in jsonl_cell


async def test_a_link_the_adapter_cannot_learn_leaves_the_delivery_sent(http_server, tmp_path, db_url, slack,
                                                                       discord_api, caplog):
    # auth.test refused once: the first message goes out without a link, the next one learns it.
    slack.script("auth.test", Scripted(error="account_inactive"))
    with caplog.at_level(logging.WARNING, logger="briefbot.delivery"):
        await post_stories(tmp_path, db_url, http_server, slack, discord_api, [f"slack:{SLACK_CHANNEL}"],
                           {"wire": [MAGNETS, STEEL]})
    store = Store(db_url)
    try:
        rows = store.outbox_rows()
    finally:
        store.close()
    assert [r.status for r in rows] == ["sent", "sent"]
    assert "its message link is unknown" in caplog.text and "account_inactive" in caplog.text
    pages = [message_cells(brief_page(tmp_path, db_url, r.ref_id))[f"slack:{SLACK_CHANNEL}"] for r in rows]
    assert [link_of(cell) is None for cell in pages] == [True, False]
    assert pages[0] == rows[0].external_id


def follow_up_cells(page: str) -> list[tuple[str, str]]:
    """Each sent follow-up of a brief's page: (its target as shown, the inside of its message cell)."""
    rows = re.findall(r'<tr class="follow-up status-sent">(.*?)</tr>', page, re.S)
    return [(html.unescape(re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)[1]),
             re.search(r'<td class="message">(.*?)</td>', row, re.S).group(1)) for row in rows]


async def test_a_follow_up_links_its_reply_in_the_thread(http_server, tmp_path, db_url, slack, discord_api):
    targets = [f"slack:{SLACK_CHANNEL}", f"discord:{DISCORD_CHANNEL}"]
    await post_stories(tmp_path, db_url, http_server, slack, discord_api, targets,
                       {"a": [MAGNETS]}, {"a": [MAGNETS], "b": [PERMITS]})
    [parent, reply] = slack.posted(SLACK_CHANNEL)
    assert reply["thread_ts"] == parent["ts"]
    [_, discord_reply] = discord_api.messages
    store = Store(db_url)
    try:
        [story] = store.latest_briefs("rare-earth")
    finally:
        store.close()
    cells = dict(follow_up_cells(brief_page(tmp_path, db_url, story.id)))
    assert link_of(cells[f"slack:{SLACK_CHANNEL}"]) == (
        f"https://briefbot-test.slack.com/archives/{SLACK_CHANNEL}/p{reply['ts'].replace('.', '')}"
        f"?thread_ts={parent['ts']}&cid={SLACK_CHANNEL}", reply["ts"])
    assert link_of(cells[f"discord:{DISCORD_CHANNEL}"]) == (
        f"https://discord.com/channels/{GUILD_ID}/{DISCORD_CHANNEL}/{discord_reply['id']}", discord_reply["id"])


def test_only_http_links_are_drawn_and_every_link_is_escaped(tmp_path, db_url):
    app = make_app(tmp_path, db_url, BRIEFBOT_WEB_TOKEN=TOKEN)
    seeded = seed(app.store, utc_now())
    [row] = [r for r in app.store.outbox_rows(ref_id=seeded.failed_brief) if r.status == "sent"]
    hostile = 'https://chat.example/m?a=1&b="><script>alert(1)</script>'
    app.store.outbox_sent(row.id, external_id="m-1", link=hostile)
    with BotHttpServer(app) as server:
        client = Client(server.port)
        shown = client.get(f"/briefs/{seeded.failed_brief}", headers=BEARER).text
        app.store.outbox_sent(row.id, external_id="m-2", link="javascript:alert(1)")
        refused = client.get("/deliveries", headers=BEARER).text
    assert link_of(message_cells(shown)[row.target]) == (hostile, "m-1")
    assert "<script>alert(1)" not in shown
    assert message_cells(refused)[row.target] == "m-2" and "javascript:" not in refused
