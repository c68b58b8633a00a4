"""Feed faults, end to end: Poller + Dispatcher over a loopback feed server that misbehaves.

Each scenario polls one healthy feed next to the faulty one and checks, through the real store and
the jsonl target: the poll returns, the healthy feed's brief is delivered once, the faulty feed's
state says what happened (failures, last_error, next_poll_at, disabled_reason), a warning names
the feed without the token in its URL, and a later poll still works.
"""

from __future__ import annotations

import argparse
import gzip
import logging
import threading
from contextlib import asynccontextmanager
from datetime import timedelta
from email.utils import format_datetime
from functools import cache

import pytest

from bot.app import cli_commands
from bot.ingest.fetch import Fetcher
from bot.models import utcnow
from bot.app.container import build_app, close_app, make_poller
from faults.support import FEED_TOKEN, closed_port_url, healthy_entry, lines, poll_and_deliver, warnings_about
from feedgen import Entry, make_env, make_settings, rss
from loopback import Reply

RSS = "application/rss+xml"
BAD_QUERY = f"?token={FEED_TOKEN}"

MAGNETS = Entry("China approves rare earth magnet export licences for 12 European firms",
                "China's commerce ministry approved rare earth magnet export licences for 12 European companies. "
                "NdPr oxide prices rose 4.5% to 615,000 yuan per tonne after the news.",
                guid="bad-1", link="https://bad.example/magnets")
GALLIUM = Entry("Gallium tariff raised to 35% on refined imports",
                "The finance ministry raised the tariff on refined gallium imports to 35% from 20%, "
                "covering about 2,300 tonnes a year.", guid="bad-2", link="https://bad.example/gallium")


@pytest.fixture(autouse=True)
def _capture_warnings(caplog):
    caplog.set_level(logging.INFO, logger="briefbot")


@asynccontextmanager
async def feed_app(server, tmp_path, db_url, bad_url: str, *, fetch: dict | None = None,
                   allowed_networks: tuple[str, ...] = ()):
    """An app polling `healthy` (always fine) and `bad` (the fault), delivering to out/briefs.jsonl."""
    server.route("/healthy.xml", Reply(200, rss([healthy_entry("h1")]), content_type=RSS))
    settings = make_settings(tmp_path, [{"name": "healthy", "url": server.url("/healthy.xml"), "every": "60s"},
                                        {"name": "bad", "url": bad_url, "every": "60s"}],
                             fetch={"timeout": "1s", **(fetch or {})})
    app = build_app(settings, make_env(db_url, allow_private_urls=not allowed_networks))
    if allowed_networks:
        # Private addresses refused, except the test server's own loopback address.
        await app.fetcher.aclose()
        app.fetcher = Fetcher(settings.fetch, allow_private=False, allowed_networks=allowed_networks)
    try:
        yield app
    finally:
        await close_app(app)


def delivered(tmp_path) -> list[dict]:
    return lines(tmp_path / "out" / "briefs.jsonl")


def assert_isolated_failure(app, reports, tmp_path, caplog, kind: str, *, failures: int = 1) -> None:
    """The healthy feed delivered exactly its one brief; the bad feed's failure is recorded and logged."""
    assert reports["healthy"].outcome in ("ok", "unchanged")
    assert reports["bad"].outcome == "error"
    briefs = delivered(tmp_path)
    assert [b["sources"][0]["feed"] for b in briefs] == ["healthy"]
    assert app.store.count_briefs() == 1
    assert all(r.status == "sent" for r in app.store.outbox_rows())
    state = app.store.feed_state("bad")
    assert state.failures == failures
    assert state.last_status == f"error:{kind}", state.last_error
    assert state.last_error and FEED_TOKEN not in state.last_error
    assert state.next_poll_at > state.last_fetch_at
    assert app.store.feed_state("healthy").failures == 0
    logged = warnings_about(caplog, "feed bad")
    assert logged, "no warning names the failing feed"
    assert all(FEED_TOKEN not in r.getMessage() for r in caplog.records)


async def recover(server, app, tmp_path, path: str = "/bad.xml") -> None:
    """The publisher fixes the feed: the next poll works, and nothing is delivered twice."""
    server.route(path, Reply(200, rss([MAGNETS]), content_type=RSS))
    reports = await poll_and_deliver(app)
    assert reports["bad"].outcome == "ok" and len(reports["bad"].new_briefs) == 1
    assert reports["healthy"].outcome == "unchanged"
    state = app.store.feed_state("bad")
    assert state.failures == 0 and state.last_error is None
    ids = [b["id"] for b in delivered(tmp_path)]
    assert len(ids) == 2 == len(set(ids))


# --------------------------------------------------------------------------- network and HTTP

@pytest.mark.fault("feed: connection refused")
async def test_connection_refused(server, tmp_path, db_url, caplog):
    async with feed_app(server, tmp_path, db_url, closed_port_url("/feed.xml" + BAD_QUERY)) as app:
        reports = await poll_and_deliver(app)
        assert_isolated_failure(app, reports, tmp_path, caplog, "connect")
        first_backoff = app.store.feed_state("bad").next_poll_at - app.store.feed_state("bad").last_fetch_at
        # Still refused next time: the failure count and the backoff grow; the healthy feed is untouched.
        again = await poll_and_deliver(app)
        assert_isolated_failure(app, again, tmp_path, caplog, "connect", failures=2)
        state = app.store.feed_state("bad")
        assert state.next_poll_at - state.last_fetch_at > first_backoff


def _stalls_mid_body(resume: threading.Event):
    body = rss([MAGNETS])
    yield body[: len(body) // 2]
    resume.wait(60)  # held until the test is over: far past the 1 s fetch deadline
    yield body[len(body) // 2:]


@pytest.mark.fault("feed: timeout mid-body")
async def test_timeout_mid_body(server, tmp_path, db_url, caplog):
    resume = threading.Event()
    server.route("/bad.xml", lambda req: Reply(200, _stalls_mid_body(resume), content_type=RSS))
    try:
        async with feed_app(server, tmp_path, db_url, server.url("/bad.xml" + BAD_QUERY)) as app:
            reports = await poll_and_deliver(app)
            assert_isolated_failure(app, reports, tmp_path, caplog, "timeout")
            await recover(server, app, tmp_path)
    finally:
        resume.set()


@pytest.mark.fault("feed: slow drip (bytes trickle in)")
async def test_slow_drip_hits_the_overall_deadline(server, tmp_path, db_url, caplog):
    # Each byte arrives well within any read timeout; only the overall deadline stops it.
    body = rss([MAGNETS])
    server.route("/bad.xml", lambda req: Reply(200, (body[i:i + 1] for i in range(len(body))), content_type=RSS,
                                              delay=0.05))
    async with feed_app(server, tmp_path, db_url, server.url("/bad.xml" + BAD_QUERY)) as app:
        reports = await poll_and_deliver(app)
        assert_isolated_failure(app, reports, tmp_path, caplog, "timeout")
        assert "longer than 1s" in app.store.feed_state("bad").last_error
        await recover(server, app, tmp_path)


@pytest.mark.fault("feed: HTTP 404")
async def test_404(server, tmp_path, db_url, caplog):
    server.route("/bad.xml", Reply(404, b"no such feed", content_type="text/plain"))
    async with feed_app(server, tmp_path, db_url, server.url("/bad.xml" + BAD_QUERY)) as app:
        reports = await poll_and_deliver(app)
        assert_isolated_failure(app, reports, tmp_path, caplog, "not-found")
        assert "404" in app.store.feed_state("bad").last_error
        await recover(server, app, tmp_path)


@pytest.mark.fault("feed: HTTP 410 gone")
async def test_410_disables_the_feed_with_a_visible_reason(server, tmp_path, db_url, caplog, capsys):
    server.route("/bad.xml", Reply(410, b"gone", content_type="text/plain"))
    async with feed_app(server, tmp_path, db_url, server.url("/bad.xml" + BAD_QUERY)) as app:
        reports = await poll_and_deliver(app)
        assert_isolated_failure(app, reports, tmp_path, caplog, "gone")
        state = app.store.feed_state("bad")
        assert "410" in state.disabled_reason and "feeds.yaml" in state.disabled_reason
        # Even a forced poll leaves a gone feed alone: no more requests to the publisher.
        asked = len(server.requests_to("/bad.xml"))
        again = await poll_and_deliver(app)
        assert again["bad"].outcome == "disabled" and again["healthy"].outcome == "unchanged"
        assert len(server.requests_to("/bad.xml")) == asked
        cli_commands.feeds_command(argparse.Namespace(), app.settings, app.env)
    shown = capsys.readouterr().out
    bad_line = next(line for line in shown.splitlines() if line.startswith("bad "))
    assert "disabled" in bad_line and "feed gone (HTTP 410)" in bad_line
    assert FEED_TOKEN not in shown


@pytest.mark.fault("feed: HTTP 429 with Retry-After seconds")
async def test_429_retry_after_sets_next_poll(server, tmp_path, db_url, caplog):
    server.route("/bad.xml", Reply(429, b"slow down", headers={"Retry-After": "3600"}, content_type="text/plain"))
    async with feed_app(server, tmp_path, db_url, server.url("/bad.xml" + BAD_QUERY)) as app:
        before = utcnow()
        reports = await poll_and_deliver(app)
        assert_isolated_failure(app, reports, tmp_path, caplog, "rate-limited")
        state = app.store.feed_state("bad")
        # The feed's own interval is 60 s; the publisher asked for an hour.
        assert state.next_poll_at >= before + timedelta(seconds=3600)
        unforced = {r.feed: r for r in await make_poller(app).poll_all()}
        assert unforced["bad"].outcome == "skipped"
        await recover(server, app, tmp_path)


@pytest.mark.fault("feed: HTTP 503 with Retry-After date")
async def test_503_retry_after_http_date(server, tmp_path, db_url, caplog):
    when = format_datetime(utcnow() + timedelta(hours=2), usegmt=True)
    server.route("/bad.xml", Reply(503, b"maintenance", headers={"Retry-After": when}, content_type="text/plain"))
    async with feed_app(server, tmp_path, db_url, server.url("/bad.xml" + BAD_QUERY)) as app:
        before = utcnow()
        reports = await poll_and_deliver(app)
        assert_isolated_failure(app, reports, tmp_path, caplog, "server-error")
        assert app.store.feed_state("bad").next_poll_at >= before + timedelta(hours=2) - timedelta(seconds=5)
        await recover(server, app, tmp_path)


@pytest.mark.fault("feed: HTTP 500")
async def test_500_backs_off_then_recovers(server, tmp_path, db_url, caplog):
    server.route("/bad.xml", Reply(500, b"oops", content_type="text/plain"))
    async with feed_app(server, tmp_path, db_url, server.url("/bad.xml" + BAD_QUERY)) as app:
        reports = await poll_and_deliver(app)
        assert_isolated_failure(app, reports, tmp_path, caplog, "server-error")
        asked = len(server.requests_to("/bad.xml"))
        unforced = {r.feed: r for r in await make_poller(app).poll_all()}
        assert unforced["bad"].outcome == "skipped" and len(server.requests_to("/bad.xml")) == asked
        await recover(server, app, tmp_path)


@pytest.mark.fault("feed: redirect loop")
async def test_redirect_loop(server, tmp_path, db_url, caplog):
    server.route("/bad.xml", Reply(302, b"", headers={"Location": "/bad2.xml" + BAD_QUERY}))
    server.route("/bad2.xml", Reply(301, b"", headers={"Location": "/bad.xml" + BAD_QUERY}))
    async with feed_app(server, tmp_path, db_url, server.url("/bad.xml" + BAD_QUERY)) as app:
        reports = await poll_and_deliver(app)
        assert_isolated_failure(app, reports, tmp_path, caplog, "redirect-loop")
        assert len(server.requests_to("/bad.xml")) == 1  # caught before going round again
        await recover(server, app, tmp_path)


@pytest.mark.fault("feed: redirect to a private address")
@pytest.mark.parametrize("location", ["http://169.254.169.254/latest/meta-data/", "http://10.0.0.7/admin",
                                      "http://[::1]:9/internal"])
async def test_redirect_to_private_address_is_refused(server, tmp_path, db_url, caplog, location):
    server.route("/bad.xml", Reply(302, b"", headers={"Location": location}))
    async with feed_app(server, tmp_path, db_url, server.url("/bad.xml" + BAD_QUERY),
                        allowed_networks=("127.0.0.1/32",)) as app:
        reports = await poll_and_deliver(app)
        assert_isolated_failure(app, reports, tmp_path, caplog, "blocked-private")
        error = app.store.feed_state("bad").last_error
        assert "non-public address" in error and "redirected to" in error
        await recover(server, app, tmp_path)


# --------------------------------------------------------------------------- hostile bodies

def _endless_chunks(total: int = 50 * 1024 * 1024, size: int = 64 * 1024):
    chunk = b"<!-- " + b"x" * (size - 9) + b" -->"
    for _ in range(total // size):
        yield chunk


@pytest.mark.fault("feed: 50 MB body")
@pytest.mark.parametrize("framing", ["declared", "streamed"])
async def test_fifty_megabyte_body_is_capped(server, tmp_path, db_url, caplog, framing):
    if framing == "declared":
        # Refused from the Content-Length header alone, before reading.
        server.route("/bad.xml", Reply(200, b"<rss/>", headers={"Content-Length": str(50 * 1024 * 1024)},
                                       content_type=RSS))
    else:
        # Chunked: no length to judge up front, so the cap applies while reading.
        server.route("/bad.xml", lambda req: Reply(200, _endless_chunks(), content_type=RSS))
    async with feed_app(server, tmp_path, db_url, server.url("/bad.xml" + BAD_QUERY),
                        fetch={"max_bytes": 1024 * 1024}) as app:
        reports = await poll_and_deliver(app)
        assert_isolated_failure(app, reports, tmp_path, caplog, "too-large")
        assert "1048576-byte limit" in app.store.feed_state("bad").last_error
        await recover(server, app, tmp_path)


@cache
def _gzip_bomb() -> bytes:
    return gzip.compress(b"\0" * (50 * 1024 * 1024), compresslevel=9)  # ~50 KB on the wire


@pytest.mark.fault("feed: gzip bomb")
async def test_gzip_bomb_is_refused(server, tmp_path, db_url, caplog):
    bomb = _gzip_bomb()
    server.route("/bad.xml", Reply(200, bomb, headers={"Content-Encoding": "gzip"}, content_type=RSS))
    async with feed_app(server, tmp_path, db_url, server.url("/bad.xml" + BAD_QUERY)) as app:
        reports = await poll_and_deliver(app)
        assert_isolated_failure(app, reports, tmp_path, caplog, "decompression-bomb")
        await recover(server, app, tmp_path)


@pytest.mark.fault("feed: malformed XML (garbage)")
async def test_garbage_xml_is_a_parse_error(server, tmp_path, db_url, caplog):
    server.route("/bad.xml", Reply(200, b"<rss><channel><<<< \x00\xff not xml &&& </rss", content_type=RSS))
    async with feed_app(server, tmp_path, db_url, server.url("/bad.xml" + BAD_QUERY)) as app:
        reports = await poll_and_deliver(app)
        assert_isolated_failure(app, reports, tmp_path, caplog, "parse")
        await recover(server, app, tmp_path)


@pytest.mark.fault("feed: malformed XML (truncated, partly usable)")
async def test_truncated_xml_keeps_the_usable_items(server, tmp_path, db_url, caplog):
    body = rss([MAGNETS]).replace(b"</channel></rss>", b"<item><title>Unclosed item about gallium & co</channel>")
    server.route("/bad.xml", Reply(200, body, content_type=RSS))
    async with feed_app(server, tmp_path, db_url, server.url("/bad.xml" + BAD_QUERY)) as app:
        reports = await poll_and_deliver(app)
        assert reports["bad"].outcome == "ok" and len(reports["bad"].new_briefs) == 1
        state = app.store.feed_state("bad")
        assert state.failures == 0 and "malformed XML" in state.last_problem
        assert warnings_about(caplog, "feed bad parsed with problems")
        assert sorted(b["sources"][0]["feed"] for b in delivered(tmp_path)) == ["bad", "healthy"]
        again = await poll_and_deliver(app)  # same body: nothing new, nothing twice
        assert again["bad"].outcome == "unchanged" and len(delivered(tmp_path)) == 2


@pytest.mark.fault("feed: HTML page instead of a feed")
async def test_html_instead_of_feed(server, tmp_path, db_url, caplog):
    page = b"<!DOCTYPE html><html><head><title>Rare earth news</title></head><body><p>Tariff news</p></body></html>"
    server.route("/bad.xml", Reply(200, page, content_type="text/html; charset=utf-8"))
    async with feed_app(server, tmp_path, db_url, server.url("/bad.xml" + BAD_QUERY)) as app:
        reports = await poll_and_deliver(app)
        assert_isolated_failure(app, reports, tmp_path, caplog, "parse")
        assert "HTML page, not an RSS/Atom feed" in app.store.feed_state("bad").last_error
        await recover(server, app, tmp_path)


@pytest.mark.fault("feed: empty body")
async def test_empty_body(server, tmp_path, db_url, caplog):
    server.route("/bad.xml", Reply(200, b"", content_type=RSS))
    async with feed_app(server, tmp_path, db_url, server.url("/bad.xml" + BAD_QUERY)) as app:
        reports = await poll_and_deliver(app)
        assert_isolated_failure(app, reports, tmp_path, caplog, "parse")
        assert "empty body" in app.store.feed_state("bad").last_error
        await recover(server, app, tmp_path)


ZH_TARIFF = Entry("美方宣布对部分商品加征关税 税率提高至25%", "美国贸易代表办公室宣布，将对约3000项商品加征关税，税率由10%提高至25%，"
                  "自12月1日起生效。", guid="zh-1", link="https://zh.example/a.html")


@pytest.mark.fault("feed: charset header wrong, XML declaration right")
async def test_wrong_charset_header_still_decodes(server, tmp_path, db_url, caplog):
    server.route("/bad.xml", Reply(200, rss([ZH_TARIFF], encoding="gbk"), content_type="text/xml; charset=utf-8"))
    async with feed_app(server, tmp_path, db_url, server.url("/bad.xml" + BAD_QUERY)) as app:
        reports = await poll_and_deliver(app)
    assert reports["bad"].outcome == "ok" and len(reports["bad"].new_briefs) == 1
    assert "charset mislabelled" in app.store.feed_state("bad").last_problem
    zh = next(b for b in delivered(tmp_path) if b["sources"][0]["feed"] == "bad")
    assert zh["title"]["zh"] == ZH_TARIFF.title


@pytest.mark.fault("feed: charset missing from Content-Type")
async def test_missing_charset_uses_the_xml_declaration(server, tmp_path, db_url, caplog):
    server.route("/bad.xml", Reply(200, rss([ZH_TARIFF], encoding="gbk"), content_type=RSS))
    async with feed_app(server, tmp_path, db_url, server.url("/bad.xml" + BAD_QUERY)) as app:
        reports = await poll_and_deliver(app)
    assert reports["bad"].outcome == "ok" and len(reports["bad"].new_briefs) == 1
    zh = next(b for b in delivered(tmp_path) if b["sources"][0]["feed"] == "bad")
    assert zh["title"]["zh"] == ZH_TARIFF.title


@pytest.mark.fault("feed: charset wrong everywhere (GBK bytes declared UTF-8)")
async def test_charset_wrong_everywhere_is_recovered_as_gbk(server, tmp_path, db_url, caplog):
    body = rss([ZH_TARIFF], encoding="gbk").replace(b'encoding="gbk"', b'encoding="utf-8"')
    server.route("/bad.xml", Reply(200, body, content_type="text/xml; charset=utf-8"))
    async with feed_app(server, tmp_path, db_url, server.url("/bad.xml" + BAD_QUERY)) as app:
        reports = await poll_and_deliver(app)
    # Invalid UTF-8 that decodes cleanly as GB18030 is read as Chinese, not recorded as mojibake.
    assert reports["bad"].outcome == "ok" and len(reports["bad"].new_briefs) == 1
    assert "gb18030" in app.store.feed_state("bad").last_problem.lower()
    assert warnings_about(caplog, "feed bad parsed with problems")
    zh = next(b for b in delivered(tmp_path) if b["sources"][0]["feed"] == "bad")
    assert zh["title"]["zh"] == ZH_TARIFF.title


@pytest.mark.fault("feed: duplicate GUIDs inside one feed")
async def test_duplicate_guids_make_one_brief(server, tmp_path, db_url, caplog):
    twin = Entry(GALLIUM.title, GALLIUM.body, guid=MAGNETS.guid, link=GALLIUM.link)
    server.route("/bad.xml", Reply(200, rss([MAGNETS, twin, MAGNETS]), content_type=RSS))
    async with feed_app(server, tmp_path, db_url, server.url("/bad.xml" + BAD_QUERY)) as app:
        reports = await poll_and_deliver(app)
        assert len(reports["bad"].new_briefs) == 1
        # Re-served with one more item: only that one is new.
        server.route("/bad.xml", Reply(200, rss([MAGNETS, twin, MAGNETS, healthy_entry("late", 77)]),
                                       content_type=RSS))
        again = await poll_and_deliver(app)
        assert len(again["bad"].new_briefs) == 1
    ids = [b["id"] for b in delivered(tmp_path)]
    assert len(ids) == 3 == len(set(ids)) == app.store.count_briefs()


@pytest.mark.fault("feed: items dated in the future")
async def test_future_dates_are_clamped_and_not_rebriefed(server, tmp_path, db_url, caplog):
    future = Entry(GALLIUM.title, GALLIUM.body, guid="fut-1", link=GALLIUM.link, hours_ago=-72)
    server.route("/bad.xml", Reply(200, rss([future]), content_type=RSS))
    async with feed_app(server, tmp_path, db_url, server.url("/bad.xml" + BAD_QUERY)) as app:
        polled_at = utcnow()
        await poll_and_deliver(app)
        server.route("/bad.xml", Reply(200, rss([future, MAGNETS]), content_type=RSS))
        again = await poll_and_deliver(app)
    assert len(again["bad"].new_briefs) == 1  # only MAGNETS; the future item is not briefed twice
    from_bad = [b for b in delivered(tmp_path) if b["sources"][0]["feed"] == "bad"]
    assert len(from_bad) == 2
    stored = app.store.get_brief(next(b["id"] for b in from_bad if b["title"]["en"] == GALLIUM.title))
    assert stored.sources[0].published <= polled_at + timedelta(minutes=1)


@pytest.mark.fault("feed: billion-laughs entity payload")
async def test_billion_laughs_is_refused_fast(server, tmp_path, db_url, caplog):
    laughs = ['<!ENTITY lol "lol">'] + [f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10 if i > 1 else "&lol;" * 10}">'
                                         for i in range(1, 10)]
    body = ('<?xml version="1.0"?>\n<!DOCTYPE rss [\n' + "\n".join(laughs) + "\n]>\n"
            '<rss version="2.0"><channel><title>&lol9;</title><item><title>rare earth &lol9;</title>'
            "<description>&lol9;</description></item></channel></rss>").encode()
    server.route("/bad.xml", Reply(200, body, content_type=RSS))
    async with feed_app(server, tmp_path, db_url, server.url("/bad.xml" + BAD_QUERY)) as app:
        reports = await poll_and_deliver(app)
        assert_isolated_failure(app, reports, tmp_path, caplog, "parse")
        assert "declares XML entities" in app.store.feed_state("bad").last_error
        await recover(server, app, tmp_path)
