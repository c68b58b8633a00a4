"""Process fault: `kill -9` between posting a follow-up and recording it.

A story is posted to a Slack channel and a Discord channel; a second outlet joins it, then a third.
Each time, `briefbot poll --once` (a real process) posts the follow-up replies, and the fake Slack
and Discord servers hold their answers once the replies have landed: the process is killed while it
waits, so the platforms have the replies and the outbox does not know. The next run must not post
them again (Slack: it finds its reply in the thread by its metadata key; Discord: the reply's nonce
returns the message already made), and must still update each original to list every source.
A killed process's leases are expired in the database (time travel, not a sleep).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
from datetime import timedelta

import pytest
from sqlalchemy import update

from bot.models import utcnow
from bot.store import Store
from bot.store import schema as t
from chat_fixtures import DISCORD_CHANNEL, DISCORD_TOKEN, discord_api, slack  # noqa: F401  (pytest fixtures)
from fakes.discord_api import FakeDiscord
from fakes.slack_api import BOT_TOKEN, FakeSlack, Scripted, mrkdwn_texts
from feedgen import Entry, rss
from loopback import Reply
from waits import async_wait_until

SLACK_CHANNEL = "C0BRIEFS1"
DISCORD_PATH = f"/channels/{DISCORD_CHANNEL}/messages"

OUTLETS = {
    "a": Entry("China approves rare earth magnet export licences for 12 European firms",
               "China's commerce ministry approved rare earth magnet export licences for 12 European companies on "
               "Friday. NdPr oxide prices rose 4.5% to 615,000 yuan per tonne after the news.",
               guid="wire-1", link="https://wire.example/magnets"),
    "b": Entry("Beijing grants magnet export permits to a dozen EU companies",
               "The Commerce Ministry in Beijing granted rare earth magnet export licences to 12 European firms, "
               "covering 5,000 tonnes of magnets a year. NdPr oxide gained 4.5% to 615,000 yuan per tonne.",
               guid="desk-9", link="https://desk.example/permits"),
    "c": Entry("商务部批准12家欧洲企业稀土磁体出口许可", "商务部表示已批准12家欧洲企业的稀土磁体出口许可申请。氧化镨钕价格上涨4.5%，"
               "报61.5万元/吨。", guid="hs-1", link="https://zh.example/xuke.html"),
}


def _expire_leases(db_url: str) -> None:
    """What the killed process held is free now, as if its lease had run out."""
    store = Store(db_url)
    past = utcnow() - timedelta(seconds=1)
    with store.engine.begin() as c:
        c.execute(update(t.feeds).where(t.feeds.c.lease_owner.is_not(None)).values(lease_until=past))
        c.execute(update(t.outbox).where(t.outbox.c.lease_owner.is_not(None)).values(lease_until=past))
    store.close()


async def _poll_once(env: dict) -> None:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot", "poll", "--once", env=env,
                                                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    _, stderr = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, stderr.decode()


def _replies(slack: FakeSlack, discord_api: FakeDiscord, parent_ts: str) -> tuple[int, int]:
    discord_replies = [m for m in discord_api.messages if m["payload"].get("message_reference")]
    return len(slack.thread(SLACK_CHANNEL, parent_ts)), len(discord_replies)


async def _kill_after_replies_land(env: dict, slack: FakeSlack, discord_api: FakeDiscord, parent_ts: str,
                                   landed: int) -> None:
    """Run a poll whose follow-up replies land on both platforms but are never answered; kill it there."""
    slack_release, discord_release = threading.Event(), asyncio.Event()
    slack.script("chat.postMessage", Scripted(status=500, error="internal_error", land_anyway=True,
                                              hold=slack_release))
    discord_api.hold(DISCORD_PATH, discord_release)
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot", "poll", "--once", env=env,
                                                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    try:
        await async_wait_until(lambda: _replies(slack, discord_api, parent_ts) == (landed, landed)
                               or proc.returncode is not None, f"follow-up {landed} landed on both platforms")
        assert proc.returncode is None, "the poll exited before it was killed"
        os.kill(proc.pid, signal.SIGKILL)
        assert await asyncio.wait_for(proc.wait(), 30) == -signal.SIGKILL
    finally:
        slack_release.set()
        discord_release.set()
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


@pytest.mark.fault("process: kill -9 between posting a follow-up reply and recording it (Slack, Discord)")
async def test_kill_9_between_follow_up_post_and_record_tells_each_outlet_once(http_server, tmp_path, slack,
                                                                               discord_api):
    for name in OUTLETS:
        http_server.route(f"/{name}.xml", Reply(200, rss([]), content_type="application/rss+xml"))
    config = tmp_path / "feeds.yaml"
    listed = "\n".join(f'  - {{name: {n}, url: "{http_server.url(f"/{n}.xml")}", every: 30s}}' for n in OUTLETS)
    config.write_text("topics:\n  rare-earth:\n    label: {en: Rare earths, zh: 稀土}\n"
                      "    keywords: [rare earth, 稀土]\n"
                      f"feeds:\n{listed}\n"
                      f'routes:\n  - {{name: desk, to: ["slack:{SLACK_CHANNEL}", "discord:{DISCORD_CHANNEL}"]}}\n',
                      encoding="utf-8")
    db_url = f"sqlite:///{tmp_path}/db.sqlite"
    env = {**os.environ, "DATABASE_URL": db_url, "BRIEFBOT_CONFIG": str(config), "BRIEFBOT_ALLOW_PRIVATE_URLS": "1",
           "BRIEFBOT_LOG_LEVEL": "WARNING", "BRIEFBOT_LEASE_SECONDS": "300",
           "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_API_BASE_URL": slack.api_url,
           "DISCORD_BOT_TOKEN": DISCORD_TOKEN, "DISCORD_API_BASE_URL": discord_api.api_base}

    http_server.route("/a.xml", Reply(200, rss([OUTLETS["a"]]), content_type="application/rss+xml"))
    await _poll_once(env)
    [parent] = slack.posted(SLACK_CHANNEL)
    [story] = discord_api.messages

    for landed, outlet in enumerate(("b", "c"), start=1):
        http_server.route(f"/{outlet}.xml", Reply(200, rss([OUTLETS[outlet]]), content_type="application/rss+xml"))
        await _kill_after_replies_land(env, slack, discord_api, parent["ts"], landed)
        _expire_leases(db_url)
        await _poll_once(env)  # the restarted bot finishes what the killed one began
        assert _replies(slack, discord_api, parent["ts"]) == (landed, landed)
    await _poll_once(env)  # and a later run has nothing left to tell

    thread = slack.thread(SLACK_CHANNEL, parent["ts"])
    assert ["Also reported by b (en)" in thread[0]["text"], "Also reported by c (zh)" in thread[1]["text"]] == \
        [True, True]
    assert [m for m in slack.posted(SLACK_CHANNEL) if "thread_ts" not in m or m["thread_ts"] == m["ts"]] == [parent]
    original = "\n".join(mrkdwn_texts(parent["blocks"]))
    assert all(host in original for host in ("wire.example", "desk.example", "zh.example"))
    assert len(discord_api.messages) == 3
    assert {e["message_id"] for e in discord_api.message_edits} == {story["id"]}
    fields = [f["name"] for f in discord_api.message(story["id"])["embeds"][0]["fields"]]
    assert "Sources / 来源 (3)" in fields

    store = Store(db_url)
    try:
        rows = store.outbox_rows()
    finally:
        store.close()
    follow_ups = [r for r in rows if r.kind == "follow_up"]
    assert len(follow_ups) == 4 and all(r.status == "sent" for r in rows)
    assert sorted(r.attempts for r in follow_ups) == [2, 2, 2, 2]  # each was killed once after landing
