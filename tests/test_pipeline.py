"""The core pipeline over a real loopback feed server: feeds → relevant items → stories → briefs → outbox."""

from __future__ import annotations

import asyncio
import io
from datetime import datetime, timedelta, timezone

from feedgen import Entry, atom, lines, make_env, make_settings, poll_and_deliver, rss
from loopback import Reply

from bot.app.container import make_poller
from bot.pipeline.batching import FeedClaimQueue
from bot.app.container import build_app, close_app

MAGNETS_EN = Entry(
    "China approves rare earth magnet export licences for 12 European firms",
    "China's commerce ministry approved rare earth magnet export licences for 12 European companies on Friday. "
    "NdPr oxide prices rose 4.5% to 615,000 yuan per tonne after the news.",
    guid="wire-1", link="https://wire.example/magnets")
ANTIMONY_EN = Entry(
    "Customs seize 30 tonnes of smuggled antimony",
    "Customs officers seized 30 tonnes of antimony ingots declared as zinc alloy. Antimony prices in Rotterdam "
    "have doubled to $38,000 per tonne this year.",
    guid="wire-2", link="https://wire.example/antimony")
FOOTBALL = Entry("City wins the cup final 3-1", "A late goal sealed the match in front of 60,000 fans.",
                 guid="wire-3", link="https://wire.example/football")
ENERGY = Entry("Regulator lifts price cap: standard energy tariff up 2%",
               "The typical household energy tariff rises 2% under the new price cap.",
               guid="wire-4", link="https://wire.example/energy")


async def test_rss_atom_gbk_relevance_and_exclude(http_server, tmp_path, db_url):
    http_server.route("/en.xml", Reply(200, rss([MAGNETS_EN, FOOTBALL, ENERGY]), content_type="application/rss+xml"))
    http_server.route("/atom.xml", Reply(200, atom([ANTIMONY_EN]), content_type="application/atom+xml"))
    zh = Entry("美方宣布对部分商品加征关税 税率提高至25%", "美国贸易代表办公室宣布，将对约3000项商品加征关税，税率由10%提高至25%，"
               "自12月1日起生效。", guid="zh-1", link="https://zh.example/a.html")
    http_server.route("/zh.xml", Reply(200, rss([zh], encoding="gbk"), content_type="text/xml; charset=gbk"))
    settings = make_settings(tmp_path, [
        {"name": "en-wire", "url": http_server.url("/en.xml")},
        {"name": "atom-wire", "url": http_server.url("/atom.xml")},
        {"name": "zh-wire", "url": http_server.url("/zh.xml")},
    ], targets=["jsonl:out/briefs.jsonl", "console"])
    console = io.StringIO()
    app = build_app(settings, make_env(db_url), console_stream=console)
    try:
        reports = await poll_and_deliver(app)
    finally:
        await close_app(app)
    by_feed = {r.feed: r for r in reports}
    assert len(by_feed["en-wire"].new_briefs) == 1 and by_feed["en-wire"].irrelevant == 2  # football + energy tariff
    briefs = lines(tmp_path / "out" / "briefs.jsonl")
    titles = sorted(b["title"]["en"] for b in briefs)
    assert len(briefs) == 3, titles
    zh_brief = next(b for b in briefs if b["sources"][0]["feed"] == "zh-wire")
    assert zh_brief["title"]["zh"] == zh.title  # GBK decoded
    assert zh_brief["topics"] == ["tariff"] and zh_brief["mode"] == "extractive"
    assert "LLM" in zh_brief["summary"]["en"]  # says plainly that translation needs an LLM
    assert any(f["text"] == "25%" and f["unit"] == "%" for f in zh_brief["figures"])
    magnets = next(b for b in briefs if b["sources"][0]["feed"] == "en-wire")
    assert set(magnets) == {"id", "topics", "title", "summary", "figures", "sources", "mode", "created",
                            "untranslated"}
    assert magnets["untranslated"] == ["zh"] and zh_brief["untranslated"] == ["en"]
    assert magnets["title"]["zh"] and magnets["summary"]["zh"]
    assert any(f["text"] == "4.5%" for f in magnets["figures"])
    for fig in magnets["figures"]:  # every figure stands verbatim in the source
        assert fig["text"] in MAGNETS_EN.body or fig["text"] in MAGNETS_EN.title
        assert fig["label"]["en"] and fig["label"]["zh"]
    assert "Customs seize 30 tonnes" in console.getvalue()


async def test_conditional_get_304_parses_nothing(http_server, tmp_path, db_url):
    body = rss([MAGNETS_EN])

    def feed(req):
        if req.header("if-none-match") == '"v1"':
            return Reply(304, b"", headers={"ETag": '"v1"'})
        return Reply(200, body, headers={"ETag": '"v1"', "Last-Modified": "Sat, 21 Nov 2026 08:00:00 GMT"},
                     content_type="application/rss+xml")

    http_server.route("/feed.xml", feed)
    settings = make_settings(tmp_path, [{"name": "wire", "url": http_server.url("/feed.xml")}])
    app = build_app(settings, make_env(db_url))
    try:
        first = await poll_and_deliver(app)
        second = await poll_and_deliver(app)
    finally:
        await close_app(app)
    assert first[0].outcome == "ok" and len(first[0].new_briefs) == 1
    assert second[0].outcome == "not-modified"
    sent = http_server.requests_to("/feed.xml")[1]
    assert sent.header("if-none-match") == '"v1"'
    assert sent.header("if-modified-since") == "Sat, 21 Nov 2026 08:00:00 GMT"
    state = app.store.feed_state("wire")
    assert state.last_status == "not-modified" and state.failures == 0
    assert len(lines(tmp_path / "out" / "briefs.jsonl")) == 1


async def test_dedup_across_polls_restart_and_guid_churn(http_server, tmp_path, db_url):
    served = {"entries": [MAGNETS_EN]}
    http_server.route("/feed.xml", lambda req: Reply(200, rss(served["entries"]), content_type="application/rss+xml"))
    settings = make_settings(tmp_path, [{"name": "wire", "url": http_server.url("/feed.xml")}])
    app = build_app(settings, make_env(db_url))
    try:
        await poll_and_deliver(app)
        # Same item again, plus a new one: only the new one is briefed.
        served["entries"] = [MAGNETS_EN, ANTIMONY_EN]
        second = await poll_and_deliver(app)
        assert len(second[0].new_briefs) == 1
    finally:
        await close_app(app)
    # Restart: a new process on the same database; the publisher churned the GUID of the same link.
    churned = Entry(MAGNETS_EN.title, MAGNETS_EN.body, guid="wire-1-republished", link=MAGNETS_EN.link)
    served["entries"] = [churned, ANTIMONY_EN]
    app2 = build_app(settings, make_env(db_url))
    try:
        third = await poll_and_deliver(app2)
    finally:
        await close_app(app2)
    assert third[0].new_briefs == [] and third[0].merged == 0
    assert len(lines(tmp_path / "out" / "briefs.jsonl")) == 2


async def test_first_poll_respects_max_age_and_clamps_future_dates(http_server, tmp_path, db_url):
    old = Entry("Gallium exports resume after pause", "Gallium shipments resumed after a pause of three months.",
                guid="old-1", link="https://wire.example/old", hours_ago=72)
    future = Entry("Tariff on steel raised to 25%", "The government raised the tariff on steel imports to 25%.",
                   guid="fut-1", link="https://wire.example/future", hours_ago=-48)
    http_server.route("/feed.xml", Reply(200, rss([old, future]), content_type="application/rss+xml"))
    settings = make_settings(tmp_path, [{"name": "wire", "url": http_server.url("/feed.xml")}])
    app = build_app(settings, make_env(db_url))
    try:
        reports = await poll_and_deliver(app)
    finally:
        await close_app(app)
    assert reports[0].old == 1 and len(reports[0].new_briefs) == 1
    brief = lines(tmp_path / "out" / "briefs.jsonl")[0]
    published = datetime.fromisoformat(brief["sources"][0]["published"])
    assert published <= datetime.now(timezone.utc)


async def test_same_story_three_outlets_one_brief(http_server, tmp_path, db_url):
    other_en = Entry("Beijing grants magnet export permits to a dozen EU companies",
                     "The Commerce Ministry in Beijing granted rare earth magnet export licences to 12 European "
                     "firms. NdPr oxide gained 4.5% to 615,000 yuan per tonne.",
                     guid="desk-9", link="https://desk.example/permits")
    zh = Entry("商务部批准12家欧洲企业稀土磁体出口许可", "商务部表示已批准12家欧洲企业的稀土磁体出口许可申请。氧化镨钕价格上涨4.5%，"
               "报61.5万元/吨。", guid="hs-1", link="https://zh.example/xuke.html")
    http_server.route("/a.xml", Reply(200, rss([MAGNETS_EN]), content_type="application/rss+xml"))
    http_server.route("/b.xml", Reply(200, atom([other_en]), content_type="application/atom+xml"))
    http_server.route("/c.xml", Reply(200, rss([zh]), content_type="application/rss+xml"))
    settings = make_settings(tmp_path, [{"name": n, "url": http_server.url(f"/{n}.xml")} for n in "abc"])
    app = build_app(settings, make_env(db_url))
    try:
        reports = await poll_and_deliver(app)
    finally:
        await close_app(app)
    briefs = lines(tmp_path / "out" / "briefs.jsonl")
    assert len(briefs) == 1, [b["title"] for b in briefs]
    stored = app.store.get_brief(briefs[0]["id"])
    assert sorted(s.feed for s in stored.sources) == ["a", "b", "c"]
    assert sum(r.merged for r in reports) == 2


async def test_failing_feed_backs_off_and_never_stops_others(http_server, tmp_path, db_url):
    http_server.route("/ok.xml", Reply(200, rss([ANTIMONY_EN]), content_type="application/rss+xml"))
    http_server.route("/broken.xml", Reply(500, b"oops", content_type="text/plain"))
    http_server.route("/gone.xml", Reply(410, b"gone", content_type="text/plain"))
    settings = make_settings(tmp_path, [{"name": "ok", "url": http_server.url("/ok.xml")},
                                        {"name": "broken", "url": http_server.url("/broken.xml")},
                                        {"name": "gone", "url": http_server.url("/gone.xml")}])
    app = build_app(settings, make_env(db_url))
    try:
        reports = {r.feed: r for r in await poll_and_deliver(app)}
        again = {r.feed: r for r in await make_poller(app).poll_all()}  # not forced: backoff and disabled respected
    finally:
        await close_app(app)
    assert len(reports["ok"].new_briefs) == 1
    broken = app.store.feed_state("broken")
    assert broken.failures == 1 and broken.last_status.startswith("error") and broken.next_poll_at > broken.last_fetch_at
    assert "500" in broken.last_error
    gone = app.store.feed_state("gone")
    assert gone.disabled_reason and "410" in gone.disabled_reason
    assert again["broken"].outcome == "skipped" and again["gone"].outcome == "disabled"


async def test_ssrf_refused_without_allow_private(http_server, tmp_path, db_url):
    http_server.route("/feed.xml", Reply(200, rss([MAGNETS_EN]), content_type="application/rss+xml"))
    settings = make_settings(tmp_path, [{"name": "internal", "url": http_server.url("/feed.xml")}])
    app = build_app(settings, make_env(db_url, allow_private_urls=False))
    try:
        reports = await poll_and_deliver(app)
    finally:
        await close_app(app)
    assert reports[0].outcome == "error"
    state = app.store.feed_state("internal")
    assert "private" in state.last_error.lower() or "loopback" in state.last_error.lower()
    assert http_server.requests_to("/feed.xml") == []  # nothing was sent to the private address


async def test_story_told_by_another_outlet_is_one_brief_with_both_topics(http_server, tmp_path, db_url):
    """An entry joining a story another feed's entry made is in the stored brief, and a topic the
    later source adds answers `/brief <topic>`. (One feed telling a story twice under another GUID,
    link and title makes two briefs: tests/test_story_matching.py.)"""
    tariff_angle = Entry("EU weighs tariff response as China grants magnet export licences to 12 firms",
                         "China approved rare earth magnet export licences for 12 European companies while "
                         "Brussels weighs a tariff response. NdPr oxide rose 4.5% to 615,000 yuan per tonne.",
                         guid="wire-5", link="https://wire.example/magnets-tariff")
    http_server.route("/a.xml", Reply(200, rss([MAGNETS_EN]), content_type="application/rss+xml"))
    http_server.route("/b.xml", Reply(200, rss([tariff_angle]), content_type="application/rss+xml"))
    settings = make_settings(tmp_path, [{"name": n, "url": http_server.url(f"/{n}.xml")} for n in "ab"])
    app = build_app(settings, make_env(db_url))
    try:
        reports = await poll_and_deliver(app)
    finally:
        await close_app(app)
    assert sum(len(r.new_briefs) for r in reports) == 1 and sum(r.merged for r in reports) == 1
    (brief,) = app.store.latest_briefs("tariff")
    assert [brief.id] == [b for r in reports for b in r.new_briefs] and brief.topics == ["rare-earth", "tariff"]
    assert sorted(s.url for s in brief.sources) == sorted([MAGNETS_EN.link, tariff_angle.link])
    assert [b.id for b in app.store.latest_briefs("rare-earth")] == [brief.id]
    delivered = lines(tmp_path / "out" / "briefs.jsonl")
    assert [len(b["sources"]) for b in delivered] == [2]  # written before delivery: both sources go out
    assert app.store.feed_state("a").items_total == 1 and app.store.feed_state("b").items_total == 1


async def test_group_commit_writes_a_full_group_at_once_in_arrival_order(http_server, tmp_path, db_url):
    """Polls finishing together are written in one transaction. A full group is written at once
    (its polls do not wait out the window), and a story decided by one poll and joined by another
    in the same group is stored with both sources."""
    other_outlet = Entry("Beijing grants magnet export permits to a dozen EU companies",
                         "The Commerce Ministry granted rare earth magnet export licences to 12 European firms. "
                         "NdPr oxide gained 4.5% to 615,000 yuan per tonne.", guid="desk-9",
                         link="https://desk.example/permits")
    http_server.route("/a.xml", Reply(200, rss([MAGNETS_EN, FOOTBALL]), content_type="application/rss+xml"))
    http_server.route("/b.xml", Reply(200, rss([other_outlet]), content_type="application/rss+xml"))
    settings = make_settings(tmp_path, [{"name": n, "url": http_server.url(f"/{n}.xml")} for n in "ab"])
    app = build_app(settings, make_env(db_url))
    poller = make_poller(app)
    poller._writes.WINDOW, poller._writes.MAX_GROUP = 600.0, 2  # only a full group is ever written
    try:
        reports = await asyncio.wait_for(poller.poll_all(force=True), 60)  # (a hang guard)
    finally:
        await close_app(app)
    # Whichever outlet was decided first made the story; the other joined it.
    assert sum(len(r.new_briefs) for r in reports) == 1 and sum(r.merged for r in reports) == 1
    assert {r.feed: r.irrelevant for r in reports} == {"a": 1, "b": 0}
    (brief,) = app.store.latest_briefs("rare-earth")
    assert sorted(s.feed for s in brief.sources) == ["a", "b"]
    assert all(app.store.feed_state(n).body_hash for n in "ab")
    assert app.store.feed_state("a").items_total == 2 and app.store.feed_state("b").items_total == 1


def _lease_owners(app) -> list:
    with app.store.engine.connect() as c:
        return [row[0] for row in c.exec_driver_sql("SELECT lease_owner FROM feeds ORDER BY name")]


async def test_feeds_polled_together_are_claimed_in_one_statement(http_server, tmp_path, db_url):
    for n in "abc":
        http_server.route(f"/{n}.xml", Reply(200, rss([FOOTBALL]), content_type="application/rss+xml"))
    settings = make_settings(tmp_path, [{"name": n, "url": http_server.url(f"/{n}.xml")} for n in "abc"])
    app = build_app(settings, make_env(db_url))
    claims = []
    claim_feed_states = app.store.claim_feed_states

    def recording_claims(names, *args, **kwargs):  # one call of the store's batch claim is one statement
        claims.append(sorted(names))
        return claim_feed_states(names, *args, **kwargs)

    app.store.claim_feed_states = recording_claims
    try:
        reports = await make_poller(app).poll_all(force=True)
    finally:
        await close_app(app)
    assert [r.outcome for r in reports] == ["ok", "ok", "ok"] and claims == [["a", "b", "c"]]
    assert _lease_owners(app) == [None, None, None]  # each poll ended its lease


async def test_a_poll_cancelled_just_after_its_claim_gives_the_feed_back(tmp_path, db_url):
    settings = make_settings(tmp_path, [{"name": "a", "url": "https://wire.example/a.xml"}])
    app = build_app(settings, make_env(db_url))
    try:
        make_poller(app)  # records the feed
        granted = []

        class CancelOnceClaimed:
            """The store; once a claim is granted, the poll that asked for it is cancelled before it
            can resume with it (the cancel is queued ahead of the poll's wake-up)."""

            def claim_feed_states(self, *args, **kwargs):
                states = app.store.claim_feed_states(*args, **kwargs)
                granted.append(set(states))
                asyncio.get_running_loop().call_soon(poll.cancel)
                return states

            def __getattr__(self, name):
                return getattr(app.store, name)

        claims = FeedClaimQueue(CancelOnceClaimed())
        poll = asyncio.create_task(claims.claim("a", "w1", timedelta(minutes=10), True))
        (outcome,) = await asyncio.gather(poll, return_exceptions=True)
        assert granted == [{"a"}] and isinstance(outcome, asyncio.CancelledError)
        assert _lease_owners(app) == [None]  # not left leased until the lease runs out
        assert "a" in app.store.claim_feed_states(["a"], "w2", timedelta(minutes=10), force=True)
    finally:
        await close_app(app)
