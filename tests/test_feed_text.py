"""What a reader sees of a feed's text: plain text kept as written, excerpts kept, charsets recovered
only when clear, no control characters anywhere they are shown, and a headline for every item.
Each feed here is written for the case it tests."""

from __future__ import annotations

import io
import json
import re
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest
import yaml
from feedgen import TOPICS, make_env, make_settings
from loopback import Reply

import bot.ingest.parse as parse_module
from bot.adapters.console import render_brief_text
from bot.adapters.console.deliver import ConsoleDeliverer
from bot.app.container import build_app, close_app, make_dispatcher, make_poller
from bot.cli import main as briefbot
from bot.ingest.parse import parse_feed
from bot.models import Brief, Source

FEED_URL = "https://wire.example/feed"
RSS_HEAD = '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Wire</title>'
ATOM_HEAD = ('<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>Wire</title>'
             "<id>urn:wire</id><updated>2026-01-01T00:00:00Z</updated>")


def rss_item(inner: str) -> str:
    # An hour old: new enough to be briefed on a feed's first poll.
    published = format_datetime(datetime.now(timezone.utc) - timedelta(hours=1))
    return f"<item>{inner}<pubDate>{published}</pubDate></item>"


def atom_entry(n: int, inner: str) -> str:
    return (f'<entry><id>urn:wire:{n}</id><link href="https://wire.example/{n}"/>'
            f"<updated>2025-04-04T08:00:00Z</updated>{inner}</entry>")


@pytest.fixture(params=["fast reader", "feedparser"])
def read(request, monkeypatch):
    """parse_feed as it runs, and with every document sent to feedparser: both give the same text."""
    if request.param == "feedparser":
        monkeypatch.setattr(parse_module, "parse_common_feed", lambda *args: None)
    return lambda body, content_type="application/xml": parse_feed(body, content_type, FEED_URL)


# --------------------------------------------------------------------------- E: declared plain text


def test_text_declared_plain_stays_as_written(read):
    feed = read((ATOM_HEAD + "".join([
        atom_entry(1, '<title type="text">History of the &lt;blink&gt; tag</title>'
                      '<summary type="text">Plain &lt;b&gt; stays</summary>'),
        atom_entry(2, '<title type="text">&lt;/example&gt;</title>'),
        atom_entry(3, '<title type="html">Why Vector&amp;lt;int&amp;gt; is slow</title>'),
        atom_entry(4, '<title type="html">AT&amp;amp;amp;T &lt;b&gt;bold&lt;/b&gt;</title>'),
        atom_entry(5, "<title>Rare earth exports fall</title>"),
    ]) + "</feed>").encode(), "application/atom+xml")
    assert [(e.title, e.text) for e in feed.entries] == [
        ("History of the <blink> tag", "Plain <b> stays"),
        ("</example>", ""),  # not emptied, so not lost
        ("Why Vector<int> is slow", ""),  # HTML: its entities decoded once
        ("AT&amp;T bold", ""),  # ... and only once
        ("Rare earth exports fall", ""),
    ]


def test_rss_title_that_is_not_html_stays_as_written(read):
    feed = read((RSS_HEAD + rss_item("<title>Why Vector&lt;int&gt; is slow</title><link>https://wire.example/v</link>")
                 + rss_item("<title>&lt;/example&gt;</title><link>https://wire.example/e</link>")
                 + "</channel></rss>").encode(), "application/rss+xml")
    assert [e.title for e in feed.entries] == ["Why Vector<int> is slow", "</example>"]


# --------------------------------------------------------------------------- F: boilerplate keeps real text


def test_excerpts_and_words_holding_day_names_keep_their_text(read):
    excerpt = "<p>Rare earth prices climbed again as traders bet on inflation [&#8230;]</p>"
    cut = "<p>Rare earth prices climbed again as traders priced in…</p>"
    words = "<p>Money</p><p>Tueur</p><p>Satisfied</p><p>Sunflower oil</p><p>Gallium prices rose 4%.</p>"
    caption_only = "<p>Photo: a rare earth mine in Inner Mongolia (File photo)</p>"
    dialogue = "<p>- My keyboard is broken.<br>- Take these tests first....<br>- What then?</p>"
    items = [("excerpt", excerpt), ("cut", cut), ("words", words), ("caption", caption_only), ("dialogue", dialogue)]
    feed = read((RSS_HEAD + "".join(
        rss_item(f"<title>{name}</title><link>https://wire.example/{name}</link>"
                 f"<description>{html.replace('&', '&amp;').replace('<', '&lt;')}</description>")
        for name, html in items) + "</channel></rss>").encode(), "application/rss+xml")
    text = {e.title: e.text for e in feed.entries}
    assert text["excerpt"] == "Rare earth prices climbed again as traders bet on inflation […]"
    assert text["cut"] == "Rare earth prices climbed again as traders priced in…"
    assert text["words"] == "Money\n\nTueur\n\nSatisfied\n\nSunflower oil\n\nGallium prices rose 4%."
    # Stripping would leave nothing: the entry keeps the text it had.
    assert text["caption"] == "Photo: a rare earth mine in Inner Mongolia (File photo)"
    assert text["dialogue"] == "- My keyboard is broken.\n- Take these tests first....\n- What then?"


def test_teasers_after_the_body_are_still_dropped(read):
    body = ("<p>China tightened rare earth export controls on Friday.</p>"
            "<p>Gallium shortage hits chip makers...</p><p>Antimony smuggling case widens…</p>")
    feed = read((RSS_HEAD + rss_item("<title>Controls</title><link>https://wire.example/c</link>"
                                     f"<description>{body.replace('<', '&lt;')}</description>")
                 + "</channel></rss>").encode(), "application/rss+xml")
    assert feed.entries[0].text == "China tightened rare earth export controls on Friday."


# --------------------------------------------------------------------------- G: charset recovery

JAPANESE = "日本銀行は金融政策決定会合で政策金利を据え置くことを決めた"
KOREAN = "한국은행은 기준금리를 동결했다고 밝혔다"
CHINESE = "商务部宣布对七类中重稀土实施出口管制"
RUSSIAN = "Как перевести на русский язык"


def unlabelled(title: str, body: str, codec: str) -> bytes:
    return ('<?xml version="1.0"?><rss version="2.0"><channel><title>Wire</title>'
            + rss_item(f"<title>{title}</title><link>https://wire.example/1</link><description>{body}</description>")
            + "</channel></rss>").encode(codec)


@pytest.mark.parametrize("title, body, codec", [
    (JAPANESE, "物価の見通しは不透明だと総裁は述べた。", "shift_jis"),
    (JAPANESE, "物価の見通しは不透明だと総裁は述べた。", "euc_jp"),
    (KOREAN, "물가 상승률이 둔화되고 있지만 불확실성이 크다.", "euc_kr"),
    (CHINESE, "分析人士认为稀土价格将上涨。", "gbk"),
])
def test_unlabelled_east_asian_feed_is_read_in_its_own_charset(title, body, codec):
    feed = parse_feed(unlabelled(title, body, codec), "application/rss+xml", FEED_URL)
    assert [(e.title, e.text) for e in feed.entries] == [(title, body)]
    assert feed.problem is not None and "no charset declared" in feed.problem and "decoded as" in feed.problem


def test_korean_never_becomes_chinese_that_could_match_a_keyword():
    feed = parse_feed(unlabelled(KOREAN, "희토류 수출", "euc_kr"), "application/rss+xml", FEED_URL)
    assert not re.search(r"[\u4e00-\u9fff]", feed.entries[0].title + feed.entries[0].text)


@pytest.mark.parametrize("title, body, codec, found", [
    (CHINESE, "分析人士认为稀土价格将上涨。", "gbk", "gb18030"),
    ("商務部宣布對七類中重稀土實施出口管制", "分析人士認為價格將上漲。", "big5", "big5"),
])
def test_chinese_labelled_utf8_everywhere_is_read_as_chinese(title, body, codec, found):
    document = unlabelled(title, body, codec).replace(b'version="1.0"?>', b'version="1.0" encoding="utf-8"?>')
    feed = parse_feed(document, "application/rss+xml; charset=utf-8", FEED_URL)
    assert [(e.title, e.text) for e in feed.entries] == [(title, body)]
    assert feed.problem == f"charset mislabelled: document declared as utf-8 is {found}: decoded as {found}"


def test_a_truncated_mislabelled_feed_is_recovered_and_its_xml_problem_shown():
    document = unlabelled(CHINESE, "分析人士认为稀土价格将上涨。", "gbk")[:-30]
    feed = parse_feed(document, "application/rss+xml; charset=utf-8", FEED_URL)
    assert [e.title for e in feed.entries] == [CHINESE]
    assert feed.problem.startswith("malformed XML")


@pytest.mark.parametrize("title, codec", [
    (RUSSIAN, "koi8_r"),
    ("Prices rose ¤5 at the café", "latin-1"),  # ¤ is halfwidth katakana to Shift_JIS: one byte proves nothing
])
def test_bytes_in_no_clear_charset_are_kept_as_decoded_and_the_feed_says_so(title, codec):
    feed = parse_feed(unlabelled(title, title, codec), "application/rss+xml", FEED_URL)
    assert len(feed.entries) == 1
    assert not re.search(r"[\u3040-\u30ff\u4e00-\u9fff\uff61-\uff9f]", feed.entries[0].title)
    assert feed.problem.endswith("nor clearly an East Asian charset: kept as decoded (windows-1252)")


# --------------------------------------------------------------------------- control characters

ESCAPED = "Rare earth exports \x1b[2Jfall 5% \u202eevil\u202c to\u200b 稀\u200b土 \u200e👩\u200d🔬 ❤\ufe0f"
SHOWN = "Rare earth exports fall 5% evil to 稀土 👩\u200d🔬 ❤\ufe0f"


def control_feed() -> bytes:
    # Raw ESC is not XML: the fast reader declines and feedparser's lenient parser reads it, as
    # it would a real publisher's broken feed.
    description = "Antimony \x1b]0;pwned\x07prices &amp;#27;[31mrose &amp;#x202E;5% in Rotterdam."
    return (RSS_HEAD + rss_item(f"<title>{ESCAPED}</title><link>https://wire.example/esc</link><guid>esc-1</guid>"
                                f"<description>{description}</description>") + "</channel></rss>").encode()


def test_control_characters_never_reach_an_entry(read):
    entry = read(control_feed(), "application/rss+xml").entries[0]
    assert entry.title == SHOWN
    assert entry.text == "Antimony prices rose 5% in Rotterdam."


UNSAFE = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def without_colour(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


async def test_control_characters_never_reach_console_jsonl_or_briefbot_brief(
        http_server, tmp_path, db_url, monkeypatch, capsys):
    http_server.route("/feed.xml", Reply(200, control_feed(), content_type="application/rss+xml"))
    feeds = [{"name": "wire", "url": http_server.url("/feed.xml")}]
    settings = make_settings(tmp_path, feeds, targets=["jsonl:out/briefs.jsonl", "console"])
    console = Terminal()
    app = build_app(settings, make_env(db_url), console_stream=console)
    try:
        await make_poller(app).poll_all(force=True)
        while await make_dispatcher(app).dispatch_once():
            pass
    finally:
        await close_app(app)
    line = (tmp_path / "out" / "briefs.jsonl").read_text(encoding="utf-8").splitlines()[0]
    assert json.loads(line)["title"]["en"] == SHOWN
    assert "\\u001b" not in line and "\\u202e" not in line.lower() and "[2J" not in line
    # The console colours (its own SGR codes) and nothing else escapes.
    printed = console.getvalue()
    assert "\x1b[" in printed and SHOWN in without_colour(printed)
    assert not UNSAFE.search(without_colour(printed))

    config = tmp_path / "feeds.yaml"
    config.write_text(yaml.safe_dump({"languages": ["en", "zh"], "topics": TOPICS, "feeds": feeds,
                                      "routes": [{"name": "all", "to": ["console"]}]}, allow_unicode=True))
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("BRIEFBOT_CONFIG", str(config))
    assert briefbot(["brief", "rare-earth"]) == 0
    out = capsys.readouterr().out
    assert f"EN  {SHOWN}" in out
    assert not UNSAFE.search(out)


async def test_console_writes_its_own_colour_codes_and_nothing_else():
    # A brief stored before text was cleaned at parse time still reaches the terminal safely.
    brief = Brief(id="b1", topics=["rare-earth"], title={"en": "Exports \x1b[2J\x1b]0;x\x07fall\u202e"},
                  summary={"en": "Down \x9b2J5%."}, mode="extractive",
                  sources=[Source(feed="wire\x1bc", title="t\x07", url="https://wire.example/a\x1b[H")])
    plain = render_brief_text(brief)
    assert "EN  Exports fall" in plain and "Down 5%." in plain and "https://wire.example/a\n" in plain + "\n"
    assert "\x1b" not in plain and not UNSAFE.search(plain)
    terminal = Terminal()
    await ConsoleDeliverer(terminal).deliver_brief(None, brief, delivery_key="k", attempt=1)
    assert "\x1b[" in terminal.getvalue() and without_colour(terminal.getvalue()) == plain + "\n"


# --------------------------------------------------------------------------- untitled items


def test_untitled_items_get_a_headline_from_their_first_sentence(read):
    long_en = ("China's commerce ministry approved rare earth magnet export licences for twelve European "
               "companies on Friday, officials said. Prices rose.")
    feed = read((RSS_HEAD
                 + rss_item(f"<link>https://wire.example/en</link><description>{long_en}</description>")
                 + rss_item("<title></title><link>https://wire.example/short</link>"
                            "<description>Gallium exports resume. More later.</description>")
                 + rss_item("<link>https://wire.example/zh</link><description>商务部宣布对稀土实施出口管制。"
                            "业内人士表示影响有限。</description>")
                 + "</channel></rss>").encode(), "application/rss+xml")
    titles = [e.title for e in feed.entries]
    assert titles[0] == "China's commerce ministry approved rare earth magnet export licences for twelve…"
    assert len(titles[0]) <= 81 and long_en.startswith(titles[0][:-1])
    assert titles[1:] == ["Gallium exports resume", "商务部宣布对稀土实施出口管制"]


async def test_an_untitled_item_is_briefed_with_a_headline(http_server, tmp_path, db_url):
    body = ("Customs officers seized 30 tonnes of antimony ingots declared as zinc alloy. Antimony prices in "
            "Rotterdam have doubled to $38,000 per tonne this year.")
    http_server.route("/feed.xml", Reply(200, (RSS_HEAD + rss_item(
        f"<link>https://wire.example/sb</link><guid>sb-1</guid><description>{body}</description>")
        + "</channel></rss>").encode(), content_type="application/rss+xml"))
    settings = make_settings(tmp_path, [{"name": "wire", "url": http_server.url("/feed.xml")}])
    app = build_app(settings, make_env(db_url))
    try:
        await make_poller(app).poll_all(force=True)
        while await make_dispatcher(app).dispatch_once():
            pass
    finally:
        await close_app(app)
    brief = json.loads((tmp_path / "out" / "briefs.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert brief["title"]["en"] == "Customs officers seized 30 tonnes of antimony ingots declared as zinc alloy"
    assert brief["title"]["zh"]
