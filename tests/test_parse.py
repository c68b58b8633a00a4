"""parse_feed on fixture feeds, fetched over real HTTP from the loopback server."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from bot.config import FetchConfig
from bot.ingest.fetch import Fetcher
from bot.ingest.parse import FeedParseError, ParsedFeed, parse_feed
from loopback import LoopbackServer, Reply

FIXTURES = Path(__file__).parent / "fixtures" / "feeds"

# (path served, fixture file, Content-Type header)
SERVED = {
    "/rss20.xml": ("rss20.xml", "application/rss+xml; charset=utf-8"),
    "/rss10.rdf": ("rss10.rdf", "application/rdf+xml"),
    "/feeds/atom.xml": ("atom.xml", "application/atom+xml"),
    "/gbk.xml": ("rss_gbk.xml", "application/rss+xml"),
    "/gbk-mislabelled.xml": ("rss_gbk.xml", "application/rss+xml; charset=utf-8"),
    "/malformed.xml": ("malformed.xml", "application/rss+xml"),
    "/page.html": ("page.html", "text/html; charset=utf-8"),
    "/laughs.xml": ("billion_laughs.xml", "application/xml"),
    "/xxe.xml": ("xxe.xml", "application/xml"),
}


@pytest.fixture(scope="module")
def feed_server():
    with LoopbackServer() as server:
        for path, (name, content_type) in SERVED.items():
            server.route(path, Reply(200, (FIXTURES / name).read_bytes(), content_type=content_type))
        server.route("/empty.xml", Reply(200, b"", content_type="application/rss+xml"))
        yield server


async def fetch_and_parse(server: LoopbackServer, path: str) -> ParsedFeed:
    fetcher = Fetcher(FetchConfig(timeout=timedelta(seconds=5)), allow_private=True)
    try:
        result = await fetcher.fetch(server.url(path))
    finally:
        await fetcher.aclose()
    assert result.status == "ok", result.error
    return parse_feed(result.body, result.content_type, result.final_url)


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


async def test_rss20(feed_server):
    feed = await fetch_and_parse(feed_server, "/rss20.xml")
    assert feed.title == "Metals Desk & Trade Wire"
    assert feed.version == "rss20" and feed.encoding == "utf-8" and feed.problem is None
    # The third item has neither title nor text and is dropped.
    assert [e.title for e in feed.entries] == [
        "China tightens export controls on seven rare earth elements",
        "US raises tariff on Chinese permanent magnets to 25%",
    ]
    first, second = feed.entries
    assert first.guid == "metals-desk-1001"
    # Relative link resolved against the feed URL.
    assert first.link == feed_server.url("/news/2025/04/rare-earth-controls")
    assert first.published == utc(2025, 4, 4, 0, 15)
    assert first.published.tzinfo is not None
    assert first.author == "Jane Doe"
    # text comes from the richer content:encoded, with the related-articles tail and script removed.
    assert first.text == (
        "Beijing on Friday added seven medium and heavy rare earth elements, including samarium, gadolinium "
        "and terbium, to its export licence list.\n\nExporters must now apply for a licence for each "
        "shipment, a process that can take 45 working days."
    )
    assert "$95" not in first.text and "42" not in first.text
    assert second.text == ("The U.S. Trade Representative said the 25% duty takes effect on May 1. "
                           "Importers had sought an exemption.")
    assert second.published == utc(2025, 4, 3, 21, 0)


async def test_rss10(feed_server):
    feed = await fetch_and_parse(feed_server, "/rss10.rdf")
    assert feed.version == "rss10" and feed.title == "Trade Policy Notes"
    (entry,) = feed.entries
    assert entry.title == "EU weighs duty on refined rare earth oxides"
    assert entry.link == "https://trade.example.org/notes/lithium-duty"
    assert entry.published == utc(2025, 3, 28, 9, 30)
    assert entry.author == "Trade Desk"
    assert "12.5% duty" in entry.text


async def test_atom(feed_server):
    feed = await fetch_and_parse(feed_server, "/feeds/atom.xml")
    assert feed.version == "atom10" and feed.title == "Magnet Markets"
    first, second = feed.entries
    # type="html" title is turned into plain text.
    assert first.title == "NdPr oxide climbs to CNY 450,000 a tonne"
    assert first.guid == "tag:magnets.example.net,2025:ndpr-climb"
    assert first.link == feed_server.url("/feeds/articles/ndpr-climb.html")
    assert first.published == utc(2025, 4, 2, 11, 45)
    assert first.author == "Li Wei"
    assert first.text.startswith("Neodymium-praseodymium oxide rose 3.2% this week")
    # The richer <content> wins over the one-line <summary>.
    assert "NdPr oxide rose for a third week." not in first.text
    assert second.published is None
    assert second.text == "Warehouse stocks of dysprosium fell by 8 tonnes."


async def test_gbk_chinese_feed(feed_server):
    feed = await fetch_and_parse(feed_server, "/gbk.xml")
    assert feed.title == "稀土快讯"
    assert feed.encoding == "gbk"
    first, second = feed.entries
    assert first.title == "商务部：对钐、钆、铽等七类中重稀土实施出口管制"
    assert second.title == "美方将对华稀土永磁体加征25%关税"
    assert first.published == utc(2025, 4, 4, 8, 30)  # +0800 converted to UTC
    # Ticker lines and the 相关内容 tail are stripped from the text.
    assert first.text == ("商务部4月4日发布公告，对钐、钆、铽、镝、镥、钪、钇等7类中重稀土相关物项实施出口管制。\n\n"
                          "业内人士表示，相关企业须逐单申请出口许可，审批时限为45个工作日。")
    assert "1.3502" not in first.text and "600111" not in first.text and "45万" not in first.text


async def test_gbk_feed_mislabelled_as_utf8(feed_server):
    feed = await fetch_and_parse(feed_server, "/gbk-mislabelled.xml")
    assert feed.problem is not None and "utf-8" in feed.problem and "gbk" in feed.problem
    assert [e.title for e in feed.entries] == ["商务部：对钐、钆、铽等七类中重稀土实施出口管制",
                                               "美方将对华稀土永磁体加征25%关税"]


async def test_malformed_feed_keeps_usable_entry(feed_server):
    feed = await fetch_and_parse(feed_server, "/malformed.xml")
    assert feed.problem is not None and feed.problem.startswith("malformed XML")
    assert feed.entries, "the well-formed part should still yield entries"
    entry = feed.entries[0]
    assert entry.title == "Tariff truce extended by 90 days & talks resume"
    assert entry.link == "https://broken.example.com/a/truce"
    assert entry.text == "Both sides agreed to keep the 10% baseline tariff while talks continue."
    assert entry.published == utc(2025, 5, 12, 9, 0)


async def test_html_page_is_not_a_feed(feed_server):
    with pytest.raises(FeedParseError) as err:
        await fetch_and_parse(feed_server, "/page.html")
    assert "HTML page" in str(err.value)
    assert feed_server.url("/page.html") in str(err.value)


async def test_empty_body_is_an_error(feed_server):
    with pytest.raises(FeedParseError) as err:
        await fetch_and_parse(feed_server, "/empty.xml")
    assert "empty" in str(err.value) and "/empty.xml" in str(err.value)


@pytest.mark.parametrize("path", ["/laughs.xml", "/xxe.xml"])
async def test_entity_declarations_are_refused(feed_server, path):
    with pytest.raises(FeedParseError) as err:
        await fetch_and_parse(feed_server, path)
    assert "entities" in str(err.value)
    assert path in str(err.value)


def test_entity_declarations_refused_in_utf16_too():
    body = (FIXTURES / "billion_laughs.xml").read_text("utf-8").replace('encoding="utf-8"', 'encoding="utf-16"')
    with pytest.raises(FeedParseError):
        parse_feed(body.encode("utf-16"), "application/xml", "https://evil.example.com/feed")


def test_netscape_doctype_without_entities_is_fine():
    body = b"""<?xml version="1.0"?>
<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN" "http://my.netscape.com/publish/formats/rss-0.91.dtd">
<rss version="0.91"><channel><title>Old feed</title><link>http://old.example.com/</link>
<description>d</description><language>en</language>
<item><title>Gallium export ban</title><link>http://old.example.com/1</link>
<description>China banned gallium exports to the U.S.</description></item></channel></rss>"""
    feed = parse_feed(body, "text/xml", "http://old.example.com/rss")
    assert feed.version.startswith("rss091")
    assert [e.title for e in feed.entries] == ["Gallium export ban"]


def test_garbage_is_not_parseable():
    with pytest.raises(FeedParseError) as err:
        parse_feed(b"\x00\x01 definitely not xml", "application/octet-stream", "https://x.example.com/f?token=s3cr3t")
    assert "https://x.example.com/f" in str(err.value)
    assert "s3cr3t" not in str(err.value)


def test_broken_xml_in_an_unknown_charset_is_not_parseable():
    # Bytes that are no UTF-8 send the document through charset recovery, which keeps it as decoded;
    # it is still broken XML with nothing in it, a failure rather than an empty feed.
    with pytest.raises(FeedParseError, match="not a parseable feed"):
        parse_feed(b"<rss><channel><<<< \x00\xff not xml &&& </rss", "application/rss+xml", "https://x.example.com/f")


def test_feed_without_content_type_has_no_problem():
    feed = parse_feed((FIXTURES / "rss10.rdf").read_bytes(), None, "https://trade.example.org/rss")
    assert feed.problem is None and len(feed.entries) == 1


def test_text_that_only_looks_like_markup_is_kept_not_lost():
    # feedparser gives this untitled item the text "<!DOCTYPE"; an entry with text is never dropped.
    body = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><link>http://e.example/</link>
<item><description>&lt;!DOCTYPE</description></item></channel></rss>"""
    feed = parse_feed(body, "application/rss+xml", "http://e.example/feed")
    assert [(e.title, e.text) for e in feed.entries] == [("<!DOCTYPE", "<!DOCTYPE")]
