"""briefbot reads feeds as feedparser does: the lxml fast path gives the same entries as feedparser,
and documents it is unsure of go to feedparser (so nothing is read differently, only faster)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

import pytest

from bench.corpus import make_corpus, render_feed
from bot.ingest.fastpath import parse_common_feed
from bot.ingest.parse import _parse_with_feedparser, parse_feed
from feedgen import Entry, atom, rss

FIXTURES = Path(__file__).parent / "fixtures" / "feeds"
SAMPLES = Path(__file__).parent.parent / "bot" / "samples" / "feeds"
URL = "https://wire.example/feeds/main.xml"


def assert_same_as_feedparser(body: bytes, content_type: str | None) -> None:
    fast, slow = parse_feed(body, content_type, URL), _parse_with_feedparser(body, content_type, URL)
    assert [asdict(e) for e in fast.entries] == [asdict(e) for e in slow.entries]
    assert (fast.title, fast.version, fast.encoding, fast.problem) == (
        slow.title, slow.version, slow.encoding, slow.problem)


def test_bench_corpus_reads_the_same_on_both_paths():
    # 120 feeds: RSS and Atom, English and Chinese, UTF-8 and GBK, with figures and boilerplate.
    feeds = make_corpus(120, 20)
    taken = 0
    for feed in feeds:
        body = render_feed(feed)
        taken += parse_common_feed(body, feed.content_type, URL) is not None
        assert_same_as_feedparser(body, feed.content_type)
    assert taken == len(feeds)  # the corpus is clean RSS 2.0 / Atom: all of it takes the fast path


@pytest.mark.parametrize("name,content_type", [
    ("rss20.xml", "application/rss+xml; charset=utf-8"), ("atom.xml", "application/atom+xml"),
    ("rss_gbk.xml", "application/rss+xml"), ("rss_gbk.xml", "text/xml; charset=gbk"),
    ("rss_gbk.xml", "application/rss+xml; charset=utf-8"), ("rss10.rdf", "application/rdf+xml"),
    ("malformed.xml", "application/rss+xml"), ("rss20.xml", None), ("rss20.xml", "text/xml"),
    ("rss20.xml", "text/html"),
])
def test_fixtures_read_the_same_on_both_paths(name, content_type):
    assert_same_as_feedparser((FIXTURES / name).read_bytes(), content_type)


@pytest.mark.parametrize("name", sorted(p.name for p in SAMPLES.iterdir()))
def test_bundled_samples_read_the_same_on_both_paths(name):
    content_type = "application/atom+xml" if name.endswith(".atom") else "application/rss+xml"
    assert_same_as_feedparser((SAMPLES / name).read_bytes(), content_type)


EDGE_RSS = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:content="http://purl.org/rss/1.0/modules/content/">
<channel><title>Edge and Co</title>
<item><title>Permalink guid only: tariff on magnets</title><guid>https://wire.example/a/1</guid>
  <pubDate>Tue, 03 Jun 2025 08:00:00 GMT</pubDate><description>Tariff text 25%.</description></item>
<item><title>Relative link, dc:date, dc:creator</title><link>/a/2</link><dc:date>2025-06-03T09:30:00+08:00</dc:date>
  <dc:creator>Wang Fang</dc:creator><description><![CDATA[<p>First.</p><script>var x = 99;</script><p>Second 3,000 t.</p>]]></description>
  <content:encoded><![CDATA[<div><p>Longer body with <b>bold</b> 12% and<br/>a break.</p><p>Related articles</p><ul><li>Old story 77%</li></ul></div>]]></content:encoded></item>
<item><title>E-mail author and odd date</title><link>https://wire.example/a/3</link><author>desk@wire.example (Trade Desk)</author>
  <pubDate>2025-06-03 10:00</pubDate><description>Body &lt;i&gt;escaped&lt;/i&gt; &amp;amp; more</description></item>
<item><title>Not a permalink</title><guid isPermaLink="false">tag-4</guid><description>Only text</description>
  <category>metals</category><comments>https://wire.example/c/4</comments></item>
<item><title>  Whitespace
  title  </title><description>   </description></item>
<item><description>No title, a body 5 tonnes</description><pubDate>not a date at all</pubDate></item>
</channel></rss>"""

EDGE_ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title type="html">Atom desk</title><id>urn:x</id>
<entry><title type="html">NdPr at CNY 450,000</title><id>urn:e1</id>
  <link rel="self" href="https://wire.example/self/1"/><link href="https://wire.example/e/1"/>
  <link rel="alternate" type="text/html" href="https://wire.example/e/1b"/>
  <updated>2025-06-03T08:00:00.250Z</updated><author><name>Li Wei</name><email>li@wire.example</email></author>
  <summary>Plain summary 5%</summary><content type="html">&lt;p&gt;Body one.&lt;/p&gt;&lt;p&gt;Body two 7%.&lt;/p&gt;</content></entry>
<entry><title>Only updated</title><id>urn:e2</id><updated>2025-06-03T08:00:00+02:00</updated>
  <link rel="enclosure" href="https://wire.example/e/2.mp3"/><summary type="text">a &lt; b</summary></entry>
<entry><title>Published and updated</title><id>urn:e3</id><published>2025-06-01T00:00:00Z</published>
  <updated>2025-06-03T00:00:00Z</updated><author><email>x@wire.example</email></author><summary>s</summary></entry>
</feed>"""


@pytest.mark.parametrize("body", [EDGE_RSS.encode(), EDGE_ATOM.encode(), EDGE_RSS.encode("gb18030")
                                  .replace(b'encoding="utf-8"', b'encoding="gb2312"')])
def test_edge_cases_read_the_same_on_both_paths(body):
    assert parse_common_feed(body, "application/xml", URL) is not None
    assert_same_as_feedparser(body, "application/xml")


def test_feedgen_documents_read_the_same_on_both_paths():
    entries = [Entry("稀土出口管制收紧", "商务部公告：7类中重稀土实施出口管制，审批时限45个工作日。", guid="g1",
                     link="https://wire.example/1"),
               Entry("US tariff & <magnets>", "Duty rises to 25% on May 1.", link="https://wire.example/2")]
    for body in (rss(entries), rss(entries, encoding="gbk"), atom(entries)):
        assert_same_as_feedparser(body, "application/xml")


@pytest.mark.parametrize("reason,body", [
    ("RSS 0.90", b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
                 b'xmlns="http://my.netscape.com/rdf/simple/0.9/"><channel><title>Old</title></channel>'
                 b"<item><title>t</title><link>https://wire.example/1</link></item></rdf:RDF>"),
    ("a base attribute feedparser reads as xml:base", b'<rss version="2.0"><channel xml:base="https://other.example/">'
                                                      b'<item base="https://third.example/"><title>t</title>'
                                                      b"<link>/x</link></item></channel></rss>"),
    ("itunes:summary maps to summary", b'<rss version="2.0" xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd">'
                                       b"<channel><item><title>t</title><itunes:summary>s</itunes:summary></item>"
                                       b"</channel></rss>"),
    ("markup inside description", b'<rss version="2.0"><channel><item><title>t</title><description><p>x</p>'
                                  b"</description></item></channel></rss>"),
    ("XHTML outside a div", b'<feed xmlns="http://www.w3.org/2005/Atom"><entry><title>t</title><content type="xhtml">'
                            b'<p xmlns="http://www.w3.org/1999/xhtml">x</p></content></entry></feed>'),
    ("a second item title", b'<rss version="2.0"><channel><item><title>First</title><title>Second</title>'
                            b"<link>https://wire.example/1</link></item></channel></rss>"),
    ("HTML entity", b'<rss version="2.0"><channel><item><title>a&nbsp;b</title></item></channel></rss>'),
    ("escaped markup in an Atom title", b'<feed xmlns="http://www.w3.org/2005/Atom"><entry><title type="html">'
                                        b"NdPr &lt;b&gt;CNY 450,000&lt;/b&gt;</title><id>urn:e1</id></entry></feed>"),
    ("entity in the channel title", b'<rss version="2.0"><channel><title>Edge &amp; Co</title><item><title>t</title>'
                                    b"<link>https://wire.example/1</link></item></channel></rss>"),
    ("GBK labelled UTF-8", (FIXTURES / "rss_gbk.xml").read_bytes().replace(b'encoding="gbk"', b'encoding="utf-8"')),
    ("DOCTYPE", b'<?xml version="1.0"?><!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN" '
                b'"http://my.netscape.com/publish/formats/rss-0.91.dtd"><rss version="2.0"><channel></channel></rss>'),
])
def test_documents_outside_the_common_case_go_to_feedparser(reason, body):
    assert parse_common_feed(body, "application/xml", URL) is None, reason
    # ... and parse_feed still reads them (through feedparser) exactly as before.
    assert_same_as_feedparser(body, "application/xml")


# Feeds where the fast reader once read differently from feedparser. Each is compared with feedparser
# twice: with feedparser's entries through the same normalisation, and field by field with
# feedparser's raw output where no normalisation applies (link, id, published).

def reading(body: bytes, content_type: str | None) -> list[tuple]:
    return [(e.title, e.link, e.guid, e.published, e.text) for e in parse_feed(body, content_type, URL).entries]


def feedparser_raw(body: bytes, content_type: str | None) -> list[tuple]:
    import io

    import feedparser

    headers = {"content-location": URL} | ({"content-type": content_type} if content_type else {})
    result = feedparser.parse(io.BytesIO(body), response_headers=headers)
    return [(e.get("link") or None, e.get("id") or None, _utc(e.get("published_parsed"))) for e in result.entries]


def _utc(parsed) -> datetime | None:
    return datetime(*parsed[:6], tzinfo=timezone.utc) if parsed else None


PUBLISHED = datetime(2025, 6, 3, 8, 0, tzinfo=timezone.utc)

# A: entities and escaped markup left in RSS titles (double-encoded, CDATA-escaped, named entities).
ENTITY_TITLES = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Entities desk</title>
<item><title>&amp;#39;Text&amp;#39; in quotes</title><link>https://wire.example/a/1</link>
  <description>One.</description><pubDate>Tue, 03 Jun 2025 08:00:00 GMT</pubDate></item>
<item><title><![CDATA[&lt;p&gt;Item Title&lt;/p&gt;]]></title><link>https://wire.example/a/2</link><description>Two.</description></item>
<item><title><![CDATA[AT&amp;T buys a magnet plant]]></title><link>https://wire.example/a/3</link><description>Three.</description></item>
<item><title>It&amp;#8217;s a&amp;nbsp;deal</title><link>https://wire.example/a/4</link><description>Four.</description></item>
<item><title>Tariff &amp; quota news</title><link>https://wire.example/a/5</link><description>Five.</description></item>
</channel></rss>"""


def test_entities_in_rss_titles_read_as_feedparser_reads_them():
    assert_same_as_feedparser(ENTITY_TITLES, "application/rss+xml")
    titles = [title for title, *_ in reading(ENTITY_TITLES, "application/rss+xml")]
    assert titles == ["'Text' in quotes", "<p>Item Title</p>", "AT&T buys a magnet plant", "It\u2019s a deal",
                      "Tariff & quota news"]
    assert [r[1:4] for r in reading(ENTITY_TITLES, "application/rss+xml")] == feedparser_raw(ENTITY_TITLES,
                                                                                             "application/rss+xml")


# B: Windows-1252 bytes (curly quotes, dash, euro) in a feed labelled ISO-8859-1, or not labelled.
WINDOWS_1252 = """<?xml version="1.0" encoding="iso-8859-1"?>
<rss version="2.0"><channel><title>Caf\u00e9 desk</title>
<item><title>Exporters don\u2019t expect \u201crelief\u201d \u2013 \u20ac5 levy</title><link>https://wire.example/b/1</link>
  <guid isPermaLink="false">b-1</guid><pubDate>Tue, 03 Jun 2025 08:00:00 GMT</pubDate>
  <description>Duty of \u20ac5 a tonne \u2013 \u201cfor now\u201d.</description></item>
</channel></rss>""".encode("cp1252")


@pytest.mark.parametrize("content_type", ["application/rss+xml", "text/xml; charset=iso-8859-1", None])
def test_windows_1252_bytes_read_as_feedparser_reads_them(content_type):
    assert_same_as_feedparser(WINDOWS_1252, content_type)
    for body in (WINDOWS_1252, WINDOWS_1252.replace(b' encoding="iso-8859-1"', b"")):
        (entry,) = reading(body, content_type)
        assert entry == ("Exporters don\u2019t expect \u201crelief\u201d \u2013 \u20ac5 levy", "https://wire.example/b/1",
                         "b-1", PUBLISHED, "Duty of \u20ac5 a tonne \u2013 \u201cfor now\u201d.")
        assert [entry[1:4]] == feedparser_raw(body, content_type)


# C: UTF-8 with no charset anywhere (no Content-Type, no encoding in the XML declaration).
UNLABELLED_UTF8 = """<?xml version="1.0"?>
<rss version="2.0"><channel><title>Caf\u00e9 \u201cna\u00efve\u201d \u6771\u4eac</title>
<item><title>Caf\u00e9 \u201cna\u00efve\u201d \u6771\u4eac</title><link>https://wire.example/c/1</link>
  <description>\u7a00\u571f prices \u2013 up 5%.</description><pubDate>Tue, 03 Jun 2025 08:00:00 GMT</pubDate></item>
</channel></rss>""".encode("utf-8")


def test_unlabelled_utf8_reads_as_feedparser_reads_it():
    assert parse_common_feed(UNLABELLED_UTF8, None, URL) is None
    assert_same_as_feedparser(UNLABELLED_UTF8, None)
    feed = parse_feed(UNLABELLED_UTF8, None, URL)
    assert feed.title == "Caf\u00e9 \u201cna\u00efve\u201d \u6771\u4eac" and feed.problem is None
    assert reading(UNLABELLED_UTF8, None) == [("Caf\u00e9 \u201cna\u00efve\u201d \u6771\u4eac", "https://wire.example/c/1",
                                               None, PUBLISHED, "\u7a00\u571f prices \u2013 up 5%.")]
    assert [r[1:4] for r in reading(UNLABELLED_UTF8, None)] == feedparser_raw(UNLABELLED_UTF8, None)


def test_unlabelled_ascii_still_takes_the_fast_path():
    body = UNLABELLED_UTF8.decode().replace("Caf\u00e9 \u201cna\u00efve\u201d \u6771\u4eac", "Cafe").replace(
        "\u7a00\u571f prices \u2013", "Prices").encode("ascii")
    assert parse_common_feed(body, None, URL) is not None
    assert_same_as_feedparser(body, None)


# D: empty <link/>, <guid/>, <id/>, href="": none of them is the feed's own URL, and the items stay apart.
EMPTY_RSS_LINKS = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Empty links</title><link>https://wire.example/</link>
<item><title>First quota cut</title><link></link><description>Quota cut by 10%.</description>
  <pubDate>Tue, 03 Jun 2025 08:00:00 GMT</pubDate></item>
<item><title>Second price rise</title><link/><guid/><description>Prices up 4%.</description></item>
<item><title>Third port delay</title><guid isPermaLink="false"></guid><description>Ships wait 6 days.</description></item>
</channel></rss>"""
EMPTY_ATOM_LINKS = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Empty atom</title><id>urn:f</id>
<entry><title>First quota cut</title><id></id><link href=""/><summary>Quota cut by 10%.</summary>
  <published>2025-06-03T08:00:00Z</published></entry>
<entry><title>Second price rise</title><id/><link href="" rel="alternate"/><summary>Prices up 4%.</summary></entry>
</feed>"""


@pytest.mark.parametrize("body,content_type", [(EMPTY_RSS_LINKS, "application/rss+xml"),
                                               (EMPTY_ATOM_LINKS, "application/atom+xml")])
def test_empty_links_and_ids_are_no_identity(body, content_type):
    from bot.analyse.identity import identify

    assert parse_common_feed(body, content_type, URL) is None
    assert_same_as_feedparser(body, content_type)
    entries = parse_feed(body, content_type, URL).entries
    assert [(e.link, e.guid) for e in entries] == [(None, None)] * len(entries)
    assert entries[0].published == PUBLISHED
    assert entries[1].text == "Prices up 4%."
    # feedparser gives an empty link as "" in RSS, and as the feed's own URL in Atom: briefbot as neither.
    assert [(link if link != URL else None, guid) for link, guid, _ in feedparser_raw(body, content_type)] == [
        (None, None)] * len(entries)
    keys = {identify(e.guid, e.link, e.title, e.text, e.published).item_key for e in entries}
    assert len(keys) == len(entries)


@pytest.mark.parametrize("uri", ["https://wire.example/a/1", "/a/2", "a3", "http:///extra/slashes", "HTTPS:////x.example/y",
                                 "urn:uuid:1234", "tag:wire.example,2025:1", "http://[::1", "", "mailto:desk@wire.example",
                                 "//cdn.example/x", "?page=2", "#frag", "https://wire.example/a?", "https://wire.example/a#",
                                 "https://wire.example/a?#f", "http://h/p;x", "https://[::1]/x", "http://h\t/x",
                                 "http://h/x\n", "https://", "http:///x", "http://?q", "https://\u00fc.example/",
                                 "https://h/\u00fc", "https://h:99999/x", "https://u:p@h/x", "https://h/a?b?c#d#e",
                                 "https://h/..//a/./b", "https://h/a b", "https://h\x7f/"])
def test_url_join_matches_feedparser(uri):
    from feedparser.urls import _urljoin as feedparser_urljoin

    from bot.ingest.fastpath import _urljoin

    assert _urljoin(URL, uri) == feedparser_urljoin(URL, uri)


# Text declared plain (Atom type="text", text/plain, and types that are not HTML) is shown as written,
# as feedparser gives it; only HTML is turned into text.
PLAIN_TEXT_ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Plain desk</title><id>urn:f</id>
<entry><title>Carriers</title><id>urn:p1</id><link href="https://wire.example/p/1"/>
  <summary type="text">AT&amp;T &lt;S&gt; rises 4%</summary></entry>
<entry><title>Templates</title><id>urn:p2</id><link href="https://wire.example/p/2"/>
  <content type="text/plain">Why Vector&lt;int&gt; is slow: 3 reasons</content></entry>
<entry><title>Longest wins</title><id>urn:p3</id><link href="https://wire.example/p/3"/>
  <summary type="html">one &lt;a href="x"&gt;two&lt;/a&gt; three</summary>
  <content type="text">&lt;script&gt;quota&lt;/script&gt; cut by 10%</content></entry>
</feed>"""


def test_declared_plain_text_is_kept_as_written():
    assert parse_common_feed(PLAIN_TEXT_ATOM, "application/atom+xml", URL) is not None
    assert_same_as_feedparser(PLAIN_TEXT_ATOM, "application/atom+xml")
    texts = [text for *_, text in reading(PLAIN_TEXT_ATOM, "application/atom+xml")]
    assert texts == ["AT&T <S> rises 4%", "Why Vector<int> is slow: 3 reasons", "<script>quota</script> cut by 10%"]


def test_content_of_other_types_is_kept_as_written():
    body = (b'<feed xmlns="http://www.w3.org/2005/Atom"><entry><title>Data</title><id>urn:j</id>'
            b'<content type="application/json">{"tonnes": 5000}</content></entry></feed>')
    assert parse_common_feed(body, "application/atom+xml", URL) is None  # an unmodelled type
    assert [text for *_, text in reading(body, "application/atom+xml")] == ['{"tonnes": 5000}']


# Text feedparser re-decodes after parsing: character references to C1 code points (read as the
# Windows-1252 characters of those bytes) and UTF-8 that was read as Latin-1 and encoded again.
REDECODED = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Re-decoded</title>
<item><title>Exporters</title><link>https://wire.example/r/1</link><description>don&#146;t expect &#147;relief&#148;</description></item>
<item><title>Ellipsis</title><link>https://wire.example/r/2</link><description>Prices rose &#226;&#128;&#166; again</description></item>
<item><title>Caf\xc3\xa9 quota</title><link>https://wire.example/r/3</link><description>Caf\xc3\xa9 imports rose 5%.</description></item>
</channel></rss>"""


def test_text_feedparser_redecodes_goes_to_it():
    assert parse_common_feed(REDECODED, "application/rss+xml", URL) is None
    assert_same_as_feedparser(REDECODED, "application/rss+xml")
    texts = [text for *_, text in reading(REDECODED, "application/rss+xml")]
    assert texts == ["don\u2019t expect \u201crelief\u201d", "Prices rose \u2026 again", "Caf\u00e9 imports rose 5%."]
    # Latin-1 text that is no UTF-8 in disguise stays on the fast path.
    plain = REDECODED.split(b"<item>")[0] + b"<item>" + REDECODED.split(b"<item>")[3]
    assert parse_common_feed(plain, "application/rss+xml", URL) is not None


# feedparser maps elements wherever they are nested: a media:title inside an enclosure, or an image's
# title inside a category, becomes the entry's title. Such items go to feedparser.
NESTED_IN_IGNORED = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/"><channel><title>Nested</title>
<item><link>https://wire.example/n/1</link><enclosure url="https://wire.example/n/1.jpg" type="image/jpeg">
  <media:title>Port of Ningbo at night</media:title></enclosure></item>
<item><title>Thumbnail only</title><link>https://wire.example/n/2</link>
  <media:content url="https://wire.example/n/2.jpg"><media:thumbnail url="https://wire.example/n/2s.jpg"/></media:content>
  <description>Quota 40,000 t.</description></item>
</channel></rss>"""


def test_elements_nested_in_ignored_ones_go_to_feedparser():
    assert parse_common_feed(NESTED_IN_IGNORED, "application/rss+xml", URL) is None
    assert_same_as_feedparser(NESTED_IN_IGNORED, "application/rss+xml")
    assert [title for title, *_ in reading(NESTED_IN_IGNORED, "application/rss+xml")] == [
        "Port of Ningbo at night", "Thumbnail only"]
    # A thumbnail inside media:content maps onto nothing briefbot reads: the fast path keeps it.
    second = NESTED_IN_IGNORED.replace(NESTED_IN_IGNORED[NESTED_IN_IGNORED.index(b"<item>"):
                                                         NESTED_IN_IGNORED.index(b"</item>") + 7], b"")
    assert parse_common_feed(second, "application/rss+xml", URL) is not None
    assert_same_as_feedparser(second, "application/rss+xml")


# An address in an attribute of an RSS <link> is what feedparser takes as the link, over the text;
# an address that is not a web address is no link briefbot can post.
ATTRIBUTE_LINK = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Links</title>
<item><title>Post</title><link uri="at://did:plc:desk/app.bsky.feed.post/1">https://wire.example/l/1</link>
  <guid isPermaLink="false">l-1</guid><description>Quota 5%.</description></item>
<item><title>Plain</title><link>https://wire.example/l/2</link><description>Quota 6%.</description></item>
</channel></rss>"""


def test_an_address_in_a_link_attribute_reads_as_feedparser_reads_it():
    assert parse_common_feed(ATTRIBUTE_LINK, "application/rss+xml", URL) is None
    assert_same_as_feedparser(ATTRIBUTE_LINK, "application/rss+xml")
    assert [link for _, link, *_ in reading(ATTRIBUTE_LINK, "application/rss+xml")] == [None, "https://wire.example/l/2"]
    assert [link for link, *_ in feedparser_raw(ATTRIBUTE_LINK, "application/rss+xml")] == [
        "at://did:plc:desk/app.bsky.feed.post/1", "https://wire.example/l/2"]


# HTML whose text feedparser's sanitiser keeps and the HTML-to-text step skips (fallback text inside
# <object>), and markup the two read apart (a DOCTYPE and head inside a description): feedparser reads it.
SANITISED_APART = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Sanitised</title>
<item><title>Chart</title><link>https://wire.example/s/1</link>
  <description>Output rose&lt;object data="chart.swf"&gt; 7% in May&lt;/object&gt;.</description></item>
<item><title>Page</title><link>https://wire.example/s/2</link><description>&lt;!DOCTYPE html&gt;&lt;html&gt;&lt;head&gt;
  &lt;title&gt;Quota page&lt;/title&gt;&lt;/head&gt;&lt;body&gt;Quota cut 10%.&lt;/body&gt;&lt;/html&gt;</description></item>
<item><title>Video</title><link>https://wire.example/s/3</link>
  <description>Watch: &lt;iframe src="https://video.example/1"&gt;&lt;/iframe&gt; port at night.</description></item>
</channel></rss>"""


def test_html_the_sanitiser_reads_apart_goes_to_feedparser():
    assert parse_common_feed(SANITISED_APART, "application/rss+xml", URL) is None
    assert_same_as_feedparser(SANITISED_APART, "application/rss+xml")
    assert reading(SANITISED_APART, "application/rss+xml")[0][4] == "Output rose 7% in May."
    # An empty iframe (a video embed) holds no text: the fast path keeps the item.
    video = SANITISED_APART.replace(SANITISED_APART[SANITISED_APART.index(b"<item>"):
                                                    SANITISED_APART.rindex(b"<item>")], b"")
    assert parse_common_feed(video, "application/rss+xml", URL) is not None
    assert_same_as_feedparser(video, "application/rss+xml")


@pytest.mark.parametrize("channel_title", [b"<title><b>Trade</b> desk</title>",
                                           b"<dc:title>Trade desk</dc:title>"])
def test_a_channel_title_feedparser_reads_otherwise_goes_to_it(channel_title):
    body = (b'<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"><channel>' + channel_title +
            b"<item><title>t</title><link>https://wire.example/1</link></item></channel></rss>")
    assert parse_common_feed(body, "application/rss+xml", URL) is None
    assert_same_as_feedparser(body, "application/rss+xml")
    assert parse_feed(body, "application/rss+xml", URL).title == "Trade desk"


# The forms the lxml reader takes besides RSS 2.0 and Atom: each read exactly as feedparser reads it.

def assert_taken_and_same(body: bytes, content_type: str = "application/xml") -> list[tuple]:
    assert parse_common_feed(body, content_type, URL) is not None
    assert_same_as_feedparser(body, content_type)
    return reading(body, content_type)


RDF = """<?xml version="1.0" encoding="utf-8"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/"
  xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:content="http://purl.org/rss/1.0/modules/content/">
<channel rdf:about="https://wire.example/rdf"><title>RDF desk</title><link>https://wire.example/</link>
  <description>Notes</description><image rdf:resource="https://wire.example/logo.png"/>
  <items><rdf:Seq><rdf:li rdf:resource="https://wire.example/r/1"/><rdf:li rdf:resource="urn:r2"/></rdf:Seq></items>
  <textinput rdf:resource="https://wire.example/search"/></channel>
<image rdf:about="https://wire.example/logo.png"><title>Logo title</title><link>https://wire.example/</link>
  <url>https://wire.example/logo.png</url></image>
<item rdf:about="https://wire.example/r/1"><title>Quota cut for NdPr oxide</title><link>https://wire.example/r/1</link>
  <description>&lt;p&gt;Quota cut by 10%.&lt;/p&gt;</description><dc:date>2025-06-03T09:30:00+08:00</dc:date>
  <dc:creator>Wang Fang</dc:creator><dc:subject>metals</dc:subject></item>
<item rdf:about="urn:r2"><title>About differs from the link</title><link>/r/2?id=7</link>
  <content:encoded><![CDATA[<p>Full body: 3,000 t <b>held</b> at port.</p>]]></content:encoded>
  <description>Teaser.</description><dc:date>Tue, 03 Jun 2025 08:00:00 GMT</dc:date></item>
<item rdf:about="https://wire.example/r/3"><title>An item without a link</title><description>Gallium 5%.</description></item>
<item><title>Neither about nor link</title><description>Germanium 7%.</description></item>
<textinput rdf:about="https://wire.example/search"><title>Search</title><description>Search the desk</description>
  <name>q</name><link>https://wire.example/search</link></textinput>
</rdf:RDF>""".encode()


def test_rss_1_0_reads_as_feedparser_reads_it():
    entries = assert_taken_and_same(RDF)
    feed = parse_feed(RDF, "application/rdf+xml", URL)
    assert (feed.title, feed.version) == ("RDF desk", "rss10")
    # rdf:about is the id as written; the link resolves against the feed's address.
    assert [(link, guid) for _, link, guid, *_ in entries] == [
        ("https://wire.example/r/1", "https://wire.example/r/1"), ("https://wire.example/r/2?id=7", "urn:r2"),
        (None, "https://wire.example/r/3"), (None, None)]
    assert [r[1:3] for r in entries] == [r[:2] for r in feedparser_raw(RDF, "application/rdf+xml")]
    assert entries[0][3] == datetime(2025, 6, 3, 1, 30, tzinfo=timezone.utc) and entries[1][3] == PUBLISHED
    assert entries[1][4] == "Full body: 3,000 t held at port."
    assert parse_feed(RDF, "application/rdf+xml", URL).entries[0].author == "Wang Fang"
    assert_same_as_feedparser((FIXTURES / "rss10.rdf").read_bytes(), "application/rdf+xml")
    assert parse_common_feed((FIXTURES / "rss10.rdf").read_bytes(), "application/rdf+xml", URL) is not None


# dc:date is feedparser's "updated", pubDate its "published": the published date wins whatever the order.
DATES = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"><channel><title>Dates</title>
<item><title>dc:date first</title><link>https://wire.example/d/1</link><dc:date>2025-06-01T00:00:00Z</dc:date>
  <pubDate>Tue, 03 Jun 2025 08:00:00 GMT</pubDate></item>
<item><title>pubDate first</title><link>https://wire.example/d/2</link><pubDate>Tue, 03 Jun 2025 08:00:00 GMT</pubDate>
  <dc:date>2025-06-01T00:00:00Z</dc:date></item>
<item><title>Unreadable pubDate</title><link>https://wire.example/d/3</link><pubDate>soon</pubDate>
  <dc:date>2025-06-03T08:00:00Z</dc:date></item>
</channel></rss>"""


def test_dc_date_and_pubdate_read_as_feedparser_reads_them():
    assert [published for *_, published, _ in assert_taken_and_same(DATES)] == [PUBLISHED] * 3


@pytest.mark.parametrize("extra,reason", [
    (b'<item rdf:about="urn:x"><title>t</title><dc:description>d</dc:description></item>', "dc:description"),
    (b'<image rdf:about="urn:i"><title>t</title><dc:title>x</dc:title></image>', "unknown element in an image"),
    (b'<item rdf:about="urn:x" href="https://wire.example/x"><title>t</title></item>', "an item href"),
    (b"<foo>bar</foo>", "an unknown root child"),
])
def test_rdf_feedparser_may_read_otherwise_goes_to_it(extra, reason):
    body = RDF.replace(b"</rdf:RDF>", extra + b"</rdf:RDF>")
    assert parse_common_feed(body, "application/xml", URL) is None, reason
    assert_same_as_feedparser(body, "application/xml")


XML_BASE = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:base="https://news.example/world/"><title>Base desk</title><id>urn:f</id>
<entry><title>Relative to the feed</title><id>items/1</id><link href="1.html"/>
  <updated>2025-06-03T08:00:00Z</updated><content type="html">&lt;p&gt;Quota 5%.&lt;/p&gt;</content></entry>
<entry xml:base="asia/"><title>Nested base</title><id>urn:e2</id><link href="2.html"/><summary>Price 7%.</summary></entry>
<entry xml:base="https://other.example/a/"><title>A link with its own base</title><id>urn:e3</id>
  <link xml:base="../b/" href="3.html"/><summary>Port 9%.</summary></entry>
<entry><title>Absolute and rooted</title><id>https://wire.example/e/4</id><link href="/top/4.html"/><summary>s</summary></entry>
<entry xml:base="javascript:alert(1)//"><title>A base of a scheme feedparser refuses</title><id>urn:e5</id>
  <link href="5.html"/><summary>s</summary></entry>
<entry><title>Id only</title><id>only/6</id><summary>s</summary></entry>
</feed>"""


def test_xml_base_resolves_links_and_ids_as_feedparser_does():
    entries = assert_taken_and_same(XML_BASE, "application/atom+xml")
    assert [(link, guid) for _, link, guid, *_ in entries] == [
        ("https://news.example/world/1.html", "https://news.example/world/items/1"),
        ("https://news.example/world/asia/2.html", "urn:e2"), ("https://other.example/b/3.html", "urn:e3"),
        ("https://news.example/top/4.html", "https://wire.example/e/4"),
        ("https://news.example/world/5.html", "urn:e5"),
        ("https://news.example/world/only/6", "https://news.example/world/only/6")]
    assert [r[1:3] for r in entries] == [r[:2] for r in feedparser_raw(XML_BASE, "application/atom+xml")]
    # The same links without any xml:base resolve against the feed's own address.
    without = XML_BASE.replace(b' xml:base="https://news.example/world/"', b"")
    assert assert_taken_and_same(without, "application/atom+xml")[0][1:3] == (
        "https://wire.example/feeds/1.html", "https://wire.example/feeds/items/1")


def test_xml_base_in_rss_resolves_as_feedparser_does():
    body = (b'<rss version="2.0"><channel xml:base="https://news.example/c/"><title>Base</title>'
            b'<item xml:base="sub/"><title>One</title><link>1.html</link><guid>g/1</guid></item>'
            b'<item><title>Two</title><link xml:base="/x/">2.html</link><guid isPermaLink="false">g/2</guid></item>'
            b"</channel></rss>")
    entries = assert_taken_and_same(body)
    assert [(link, guid) for _, link, guid, *_ in entries] == [
        ("https://news.example/c/sub/1.html", "https://news.example/c/sub/g/1"), ("https://news.example/x/2.html", "g/2")]


XHTML = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:h="http://www.w3.org/1999/xhtml">
<title type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml">XHTML <em>desk</em></div></title><id>urn:f</id>
<entry><title type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml">NdPr at <b>CNY 450,000</b> &amp; rising</div></title>
  <id>urn:x1</id><link href="https://wire.example/x/1"/><updated>2025-06-03T08:00:00Z</updated>
  <content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml"><p>Quota cut by <strong>10%</strong>,
    a &lt;tag&gt; &#8212; and&#160;more.</p><p>Second<br/>line.</p><ul><li>One 5%</li></ul>
    <p/><img src="chart.png" alt="chart"/>Tail text.</div></content></entry>
<entry><title>Prefixed XHTML summary</title><id>urn:x2</id><link href="https://wire.example/x/2"/>
  <summary type="xhtml"><h:div>Port <h:i>delays</h:i> of 6 days.</h:div></summary></entry>
<entry><title>Plain title, XHTML and HTML</title><id>urn:x3</id><link href="https://wire.example/x/3"/>
  <summary type="html">&lt;p&gt;Short.&lt;/p&gt;</summary>
  <content type="xhtml"> <div xmlns="http://www.w3.org/1999/xhtml">Longer text with 4 tonnes in it.</div> </content></entry>
</feed>""".encode()


def test_xhtml_constructs_read_as_feedparser_reads_them():
    entries = assert_taken_and_same(XHTML, "application/atom+xml")
    assert parse_feed(XHTML, "application/atom+xml", URL).title == "XHTML desk"
    assert [title for title, *_ in entries] == ["NdPr at CNY 450,000 & rising", "Prefixed XHTML summary",
                                                "Plain title, XHTML and HTML"]
    assert entries[0][4] == "Quota cut by 10%,\na <tag> \u2014 and more.\n\nSecond\nline.\n\nOne 5%\n\nTail text."
    assert [text for *_, text in entries[1:]] == ["Port delays of 6 days.", "Longer text with 4 tonnes in it."]


@pytest.mark.parametrize("content,reason", [
    (b'<div xmlns="http://www.w3.org/1999/xhtml"><p>a</p></div><div xmlns="http://www.w3.org/1999/xhtml">b</div>',
     "two divs"),
    (b'text <div xmlns="http://www.w3.org/1999/xhtml">b</div>', "text outside the div"),
    (b'<div xmlns="http://www.w3.org/1999/xhtml"><svg xmlns="http://www.w3.org/2000/svg"><title>c</title></svg></div>',
     "SVG"),
    (b'<div xmlns="http://www.w3.org/1999/xhtml"><body>b</body></div>', "a body"),
    (b'<div xmlns="http://www.w3.org/1999/xhtml">a<style>p &gt; b {}</style>b</div>', "a style feedparser lets out"),
    (b'<div xmlns="http://www.w3.org/1999/xhtml">a<br>b</br>c</div>', "text in a void element"),
    (b'<div xmlns="http://www.w3.org/1999/xhtml">Chart<object data="c.swf">7% in May</object></div>',
     "an object the sanitiser keeps the text of"),
])
def test_xhtml_feedparser_may_read_otherwise_goes_to_it(content, reason):
    body = (b'<feed xmlns="http://www.w3.org/2005/Atom"><entry><title>t</title><id>urn:1</id>'
            b'<content type="xhtml">' + content + b"</content></entry></feed>")
    assert parse_common_feed(body, "application/atom+xml", URL) is None, reason
    assert_same_as_feedparser(body, "application/atom+xml")


def test_mixed_bench_corpus_reads_the_same_on_both_paths():
    # The forms real publishers use: RDF, xml:base and XHTML take the fast path, the rest goes to feedparser.
    taken: dict[str, set[bool]] = {}
    for feed in make_corpus(36, 5, mixed=True):
        body = render_feed(feed)
        taken.setdefault(feed.variant, set()).add(parse_common_feed(body, feed.content_type, URL) is not None)
        assert_same_as_feedparser(body, feed.content_type)
    assert taken == {"": {True}, "rdf": {True}, "xmlbase": {True}, "xhtml": {True}, "doctype": {False},
                     "mislabelled": {False}, "broken": {False}}


NETSCAPE_DOCTYPE = (b'<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN" '
                    b'"http://my.netscape.com/publish/formats/rss-0.91.dtd">')
RSS_091 = (b'<?xml version="1.0" encoding="utf-8"?>\n' + NETSCAPE_DOCTYPE + b"""
<rss version="0.91"><channel><title>Metals desk</title><link>https://wire.example/</link>
<description>Daily &#8212; wire</description><language>en</language>
<item><title>Quota cut</title><link>https://wire.example/n/1</link><description>Cut by 10% &amp; more&#160;soon.</description></item>
<item><title>Port delays</title><link>/n/2</link><description>&lt;p&gt;Six days.&lt;/p&gt;</description></item>
</channel></rss>""")


def test_a_doctype_feedparser_removes_reads_as_feedparser_reads_it():
    entries = assert_taken_and_same(RSS_091)
    assert parse_feed(RSS_091, "application/xml", URL).version == "rss091n"
    assert [(link, text) for _, link, _, _, text in entries] == [
        ("https://wire.example/n/1", "Cut by 10% & more soon."), ("https://wire.example/n/2", "Six days.")]
    # Another DOCTYPE names no version: the root's applies.
    other = RSS_091.replace(NETSCAPE_DOCTYPE, b'<!DOCTYPE rss SYSTEM "https://wire.example/rss.dtd">')
    assert_taken_and_same(other)
    assert parse_feed(other, "application/xml", URL).version == "rss091u"


@pytest.mark.parametrize("body,reason", [
    (RSS_091.replace(b"more&#160;soon", b"more&nbsp;soon"), "an entity only the DTD defines"),
    (RSS_091.replace(b"rss-0.91.dtd\">", b'rss-0.91.dtd" [<!ELEMENT rss ANY>]>'), "an internal subset"),
    (RSS_091.replace(b"?>\n<!DOCTYPE", b"?><!DOCTYPE"), "a DOCTYPE feedparser does not remove"),
    (b'<?xml version="1.0"?>\n' + NETSCAPE_DOCTYPE + b'\n<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>'
     b"<entry><title>e</title><id>urn:1</id></entry></feed>", "Atom named RSS 0.91"),
])
def test_a_doctype_feedparser_reads_otherwise_goes_to_it(body, reason):
    assert parse_common_feed(body, "application/xml", URL) is None, reason
    assert_same_as_feedparser(body, "application/xml")


# HTML the sanitiser changes where the text step reads it as it is: block tags it removes (the text
# step breaks paragraphs at them), markup inside a textarea or xmp, entities inside a script or style.
@pytest.mark.parametrize("html", ["&lt;main&gt;Quota&lt;/main&gt;cut", "&lt;summary&gt;Quota&lt;/summary&gt;cut",
                                  "&lt;hgroup&gt;Quota&lt;/hgroup&gt;cut",
                                  "&lt;textarea&gt;a &lt;b style='color:red'&gt;x&lt;/b&gt;&lt;/textarea&gt;cut",
                                  "&lt;xmp&gt;&lt;b&gt;x&lt;/b&gt;&lt;/xmp&gt;cut",
                                  "&lt;script&gt;load('/w?a=1&amp;amp;b=2')&lt;/script&gt;Quota cut",
                                  "&lt;style&gt;p { content: '&amp;#169;' }&lt;/style&gt;Quota cut"])
def test_html_the_sanitiser_rewrites_goes_to_feedparser(html):
    body = (f'<rss version="2.0"><channel><title>Desk</title><item><title>t</title><link>https://wire.example/1</link>'
            f"<description>{html}</description></item></channel></rss>").encode()
    assert parse_common_feed(body, "application/rss+xml", URL) is None
    assert_same_as_feedparser(body, "application/rss+xml")
