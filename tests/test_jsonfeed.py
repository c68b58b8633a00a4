"""JSON Feed 1.0 and 1.1: read into the entries RSS and Atom give, with the same identity rules,
and polled into briefs like any other feed."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from bot.app.container import build_app, close_app, make_poller
from bot.ingest.parse import FeedParseError, parse_feed
from feedgen import make_env, make_settings
from loopback import Reply

FEED_URL = "https://blog.example/feeds/main.json"


def stamp(hours_ago: float, offset_hours: int = 0) -> str:
    """An RFC 3339 time `hours_ago` before now, written in a zone `offset_hours` east of UTC."""
    zone = timezone(timedelta(hours=offset_hours))
    return (datetime.now(timezone.utc) - timedelta(hours=hours_ago)).astimezone(zone).replace(microsecond=0).isoformat()


def feed_1_1(items: list[dict], **top) -> bytes:
    doc = {"version": "https://jsonfeed.org/version/1.1", "title": "Metals  notes",
           "home_page_url": "https://blog.example/", "feed_url": FEED_URL,
           "authors": [{"name": "Desk"}], "items": items, **top}
    return json.dumps(doc, ensure_ascii=False).encode()


def feed_1_0(items: list[dict], **top) -> bytes:
    doc = {"version": "https://jsonfeed.org/version/1", "title": "Old-style notes",
           "home_page_url": "https://old.example/blog/", "author": {"name": "Ana Li"}, "items": items, **top}
    return json.dumps(doc).encode()


def test_json_feed_1_1_fields_identity_dates_and_text():
    body = feed_1_1([
        {"id": "post-1", "url": "/2026/antimony", "title": "Antimony\n  at a record",
         "content_html": "<p>Antimony traded at $38,000 per tonne, up 12%.</p><p>Rotterdam &amp; Antwerp.</p>",
         "content_text": "ignored when there is HTML", "summary": "ignored too",
         "date_published": "2026-11-20T09:30:00+08:00", "authors": [{"name": "Wen Zhao"}, {"name": "Sam Roe"}]},
        {"id": 1042, "external_url": "https://wire.example/gallium", "title": "Gallium exports resume",
         "content_text": "Why Vector<int> is slow:\n\nline one\nline two", "date_modified": "2026-11-21T08:00:00Z"},
        {"id": "post-3", "url": "https://blog.example/3", "summary": "A note without a title.",
         "date_published": "not a date"},
        {"id": "post-4", "url": "https://blog.example/4"},  # neither title nor text: no entry
    ])
    feed = parse_feed(body, "application/feed+json", FEED_URL)
    assert (feed.title, feed.version, feed.encoding, feed.problem) == ("Metals notes", "json11", "utf-8", None)
    first, second, third = feed.entries
    assert first.guid == "post-1" and first.link == "https://blog.example/2026/antimony"  # joined on home_page_url
    assert first.title == "Antimony at a record"
    assert first.text == "Antimony traded at $38,000 per tonne, up 12%.\n\nRotterdam & Antwerp."
    assert first.published == datetime(2026, 11, 20, 1, 30, tzinfo=timezone.utc)  # aware UTC
    assert first.author == "Wen Zhao, Sam Roe"
    # A numeric id is read as a string; external_url stands in for a missing url; plain text is kept as written.
    assert second.guid == "1042" and second.link == "https://wire.example/gallium"
    assert second.text == "Why Vector<int> is slow:\n\nline one\nline two"
    assert second.published == datetime(2026, 11, 21, 8, 0, tzinfo=timezone.utc)  # date_modified when unpublished
    assert second.author == "Desk"  # the feed's authors when the item names none
    # An untitled item is headed by its first sentence, as untitled RSS items are.
    assert third.title == "A note without a title" and third.text == "A note without a title." \
        and third.published is None


def test_control_characters_are_removed_as_from_xml_feeds():
    body = feed_1_1([{"id": "c", "title": "Rare\x1b[2J earth \u202eprices", "authors": [{"name": "Ed\x07"}],
                      "content_text": "Up\u200b 5%\x00 today.\r\nMore: Vector<int>."}])
    (entry,) = parse_feed(body, "application/feed+json", FEED_URL).entries
    assert entry.title == "Rare earth prices" and entry.author == "Ed"
    assert entry.text == "Up 5% today.\nMore: Vector<int>."


def test_json_feed_1_0_sniffed_without_content_type():
    body = feed_1_0([{"id": "a", "url": "notes/a.html", "title": "Tariff note",
                      "content_text": "Duties rise to 25%.", "date_published": "2026-11-20T10:00:00-05:00"}])
    for content_type in (None, "text/plain", "application/json", "application/octet-stream"):
        feed = parse_feed(b"\xef\xbb\xbf\n " + body, content_type, "https://old.example/feed.json")
        (entry,) = feed.entries
        assert feed.version == "json1" and entry.author == "Ana Li"
        assert entry.link == "https://old.example/blog/notes/a.html"
        assert entry.published == datetime(2026, 11, 20, 15, 0, tzinfo=timezone.utc)


def test_relative_urls_fall_back_to_feed_url_then_fetch_url_and_never_name_the_feed_itself():
    items = [{"id": "x", "url": "x.html", "title": "X"},
             {"id": FEED_URL, "url": FEED_URL, "title": "The feed's own address is no item's"},
             {"id": "z", "url": "", "external_url": "", "title": "Z"}]
    no_home = json.dumps({"version": "https://jsonfeed.org/version/1.1", "feed_url": FEED_URL, "items": items})
    feed = parse_feed(no_home.encode(), "application/feed+json", "https://mirror.example/m.json")
    assert [(e.guid, e.link) for e in feed.entries] == [
        ("x", "https://blog.example/feeds/x.html"), (None, None), ("z", None)]
    bare = json.dumps({"version": "https://jsonfeed.org/version/1.1", "items": items[:1]})
    (entry,) = parse_feed(bare.encode(), None, "https://mirror.example/feeds/m.json").entries
    assert entry.link == "https://mirror.example/feeds/x.html"


def test_xml_served_as_json_is_still_read_as_xml():
    rss = (b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
           b"<item><title>Rare earth quota</title><guid>g1</guid></item></channel></rss>")
    feed = parse_feed(rss, "application/json", "https://x.example/feed")
    assert feed.version == "rss20" and feed.entries[0].title == "Rare earth quota"


@pytest.mark.parametrize("body, content_type, reason", [
    (b'{"version": "https://jsonfeed.org/version/1.1",\n "items": [,]}', "application/feed+json",
     "not valid JSON (line 2 column 12: Expecting value)"),
    (b'{"title": "an API answer", "items": []}', "application/json",
     'not a JSON Feed (no "version": "https://jsonfeed.org/version/1.1")'),
    (b'[{"id": 1}]', "application/json", "not a JSON Feed (the JSON is list, not an object)"),
    (b'{"version": "https://jsonfeed.org/version/1", "items": {}}', None, 'not a usable JSON Feed (no "items" list)'),
    (b'\xef\xbb\xbf{"version": "https://jsonfeed.org/version/1", "title": "caf\xe9"}', None,
     "JSON Feed is not UTF-8 (byte 0xe9 at offset 62)"),
    (b"[" * 100_000, "application/json", "not a JSON Feed (the JSON is nested too deeply)"),
])
def test_bad_json_gives_one_clear_reason(body, content_type, reason):
    with pytest.raises(FeedParseError) as caught:
        parse_feed(body, content_type, "https://x.example/feed.json")
    assert caught.value.reason == reason
    assert "\n" not in str(caught.value) and "SAX" not in str(caught.value)


def test_unknown_version_and_stray_items_are_read_and_said():
    body = json.dumps({"version": "https://jsonfeed.org/version/2", "items": [
        "not an object", {"id": "1", "title": "Rare earth note"}]}).encode()
    feed = parse_feed(body, None, "https://x.example/feed.json")
    assert [e.title for e in feed.entries] == ["Rare earth note"] and feed.version == "json"
    assert feed.problem == "unknown JSON Feed version 'https://jsonfeed.org/version/2', read as 1.1; " \
                           "1 item(s) are not JSON objects"


async def test_json_feed_items_become_briefs_through_the_poll(http_server, tmp_path, db_url):
    v11 = feed_1_1([
        {"id": "mag-1", "url": "/magnets", "title": "China approves rare earth magnet export licences",
         "content_html": "<p>China approved rare earth magnet export licences for 12 European firms. "
                         "NdPr oxide rose 4.5% to 615,000 yuan per tonne.</p>", "date_published": stamp(2, 8)},
        {"id": "foot-1", "url": "/football", "title": "City wins the cup", "content_text": "3-1 in the final.",
         "date_published": stamp(1)},
    ])
    v10 = feed_1_0([{"id": 7, "url": "duties", "title": "US raises tariffs on steel to 25%",
                     "content_text": "The new tariff of 25% applies from December 1.", "date_published": stamp(3)}])
    http_server.route("/v11.json", Reply(200, v11, content_type="application/feed+json"))
    http_server.route("/v10.json", Reply(200, v10, content_type="application/json"))
    settings = make_settings(tmp_path, [{"name": "blog", "url": http_server.url("/v11.json")},
                                        {"name": "old", "url": http_server.url("/v10.json")}])
    app = build_app(settings, make_env(db_url))
    try:
        first = {r.feed: r for r in await make_poller(app).poll_all(force=True)}
        again = {r.feed: r for r in await make_poller(app).poll_all(force=True)}
        stored = {f: app.store.get_brief(first[f].new_briefs[0]) for f in ("blog", "old")}
    finally:
        await close_app(app)
    assert first["blog"].outcome == "ok" and len(first["blog"].new_briefs) == 1 and first["blog"].irrelevant == 1
    assert len(first["old"].new_briefs) == 1
    magnets = stored["blog"]
    assert magnets.sources[0].url == "https://blog.example/magnets"
    assert magnets.topics == ["rare-earth"] and any(f.text == "4.5%" for f in magnets.figures)
    assert stored["old"].topics == ["tariff"] and stored["old"].sources[0].url == "https://old.example/blog/duties"
    assert all(r.outcome == "unchanged" and not r.new_briefs for r in again.values())
