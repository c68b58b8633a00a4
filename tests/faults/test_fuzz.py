"""Fuzzing (hypothesis) the parts that eat untrusted text: the feed parser, the figure extractor and
the renderers. Properties: never crash (only the documented FeedParseError), never an unescaped
mention in Slack mrkdwn, never a Discord payload that may ping."""

from __future__ import annotations

import re
from datetime import datetime, timezone

from discord.http import handle_message_parameters
from hypothesis import HealthCheck, given, settings, strategies as st

from bot.adapters.console import render_brief_text
from bot.adapters.discord.render import NO_MENTIONS, render_brief_embed
from bot.adapters.slack.render import _safe_url, render_brief, render_digest
from bot.ingest.parse import FeedParseError, parse_feed
from bot.analyse.numbers import extract_figures, find_numbers
from bot.models import Brief, Digest, DigestSection, Figure, Source
from fakes.slack_api import mrkdwn_texts

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Text that mixes what hostile feeds and models produce: mentions, links, markup, CJK, numbers.
HOSTILE_PIECES = ["<!channel>", "<!here>", "<!everyone>", "<@U0ALL>", "<@W123|bob>", "<#C0RANDOM>",
                  "<!subteam^S1|@ops>", "@everyone", "@here", "<https://evil.example|click>",
                  "[click](https://evil.example)", "&lt;!channel&gt;", "&amp;", "<", ">", "&", "|", "`", "*", "_",
                  "~", "\u202e", "\x00", "稀土", "关税", "12.5%", "3.2亿元", "$38,000 per tonne", "1,234 tonnes",
                  "<script>alert(1)</script>", "]]>", "<![CDATA[", "\n", " "]
hostile_text = st.lists(st.one_of(st.sampled_from(HOSTILE_PIECES), st.text(max_size=12)), max_size=12).map("".join)

# Slack mrkdwn control sequences that would ping or link: must never survive escaping.
SLACK_SPECIAL = re.compile(r"<(?:!|@|#)")


# --------------------------------------------------------------------------- parser

@FUZZ
@given(st.binary(max_size=2048), st.sampled_from([None, "application/rss+xml", "text/html", "text/xml; charset=gbk"]))
def test_parse_feed_random_bytes_never_crashes(body, content_type):
    try:
        parsed = parse_feed(body, content_type, "https://wire.example/feed.xml")
    except FeedParseError as exc:
        assert "wire.example" in str(exc)
        return
    for entry in parsed.entries:
        assert isinstance(entry.title, str) and isinstance(entry.text, str)
        assert entry.published is None or entry.published.tzinfo is not None


def _xml_text(value: str) -> str:
    # Only XML-legal characters; escaping left to chance on purpose (some items are malformed).
    return "".join(ch for ch in value if ch in "\t\n\r" or ord(ch) >= 0x20 and ch not in "\ufffe\uffff")


item_strategy = st.fixed_dictionaries({
    "title": hostile_text, "description": hostile_text, "guid": st.text(max_size=20),
    "link": st.sampled_from(["https://wire.example/a", "javascript:alert(1)", "//evil.example/x", "", "not a url",
                             "https://wire.example/a?x=<b>"]),
    "date": st.sampled_from(["Mon, 12 May 2025 09:00:00 GMT", "yesterday", "", "9999-99-99", "Sat, 01 Jan 3000 00:00:00 GMT"]),
    "wrap": st.sampled_from(["plain", "cdata", "escaped"]),
})


@FUZZ
@given(st.lists(item_strategy, max_size=5), st.sampled_from(["rss", "atom", "rdf"]),
       st.sampled_from(["utf-8", "gbk", "utf-16"]))
def test_structured_hostile_xml_never_crashes(items, flavour, encoding):
    def wrap(value: str, how: str) -> str:
        value = _xml_text(value)
        if how == "cdata":
            return f"<![CDATA[{value}]]>"
        if how == "escaped":
            return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        return value

    if flavour == "atom":
        entries = "".join(f"<entry><title>{wrap(i['title'], i['wrap'])}</title><id>{wrap(i['guid'], 'escaped')}</id>"
                          f"<link href=\"{wrap(i['link'], 'escaped')}\"/><updated>{i['date']}</updated>"
                          f"<summary type=\"html\">{wrap(i['description'], i['wrap'])}</summary></entry>"
                          for i in items)
        text = f'<?xml version="1.0" encoding="{encoding}"?><feed xmlns="http://www.w3.org/2005/Atom">{entries}</feed>'
    else:
        inner = "".join(f"<item><title>{wrap(i['title'], i['wrap'])}</title><link>{wrap(i['link'], 'escaped')}</link>"
                        f"<guid>{wrap(i['guid'], 'escaped')}</guid><pubDate>{i['date']}</pubDate>"
                        f"<description>{wrap(i['description'], i['wrap'])}</description></item>" for i in items)
        root = ('<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/">'
                f"<channel><title>t</title></channel>{inner}</rdf:RDF>") if flavour == "rdf" else \
            f'<rss version="2.0"><channel><title>t</title>{inner}</channel></rss>'
        text = f'<?xml version="1.0" encoding="{encoding}"?>{root}'
    body = text.encode(encoding, errors="replace")
    try:
        parsed = parse_feed(body, "application/xml", "https://wire.example/feed.xml")
    except FeedParseError:
        return
    for entry in parsed.entries:
        assert entry.link is None or entry.link.startswith(("http://", "https://"))


# --------------------------------------------------------------------------- figures

@FUZZ
@given(hostile_text, st.sampled_from(["en", "zh"]))
def test_figure_extraction_never_crashes_and_stays_verbatim(text, lang):
    for number in find_numbers(text):
        assert number.kind
    for figure in extract_figures(text, lang, max_figures=6):
        assert figure.text and figure.text in text  # a figure is always quoted from the text


# --------------------------------------------------------------------------- renderers

figure_strategy = st.builds(Figure, text=hostile_text.filter(bool), value=st.none() | st.floats(allow_nan=False),
                            unit=st.sampled_from(["", "%", "t", "USD", "CNY"]),
                            label=st.fixed_dictionaries({"en": hostile_text, "zh": hostile_text}))
source_strategy = st.builds(Source, url=st.sampled_from(["https://wire.example/a", "https://wire.example/a>|<!channel>",
                                                         "javascript:alert(1)", "https://wire.example/q?a=1&b=<2>"]),
                            feed=hostile_text, title=hostile_text,
                            published=st.none() | st.just(datetime(2025, 5, 12, 9, tzinfo=timezone.utc)))
brief_strategy = st.builds(
    Brief, id=st.just("b_fuzz000000000001"), topics=st.lists(st.sampled_from(["rare-earth", "tariff", "<!here>"]),
                                                             max_size=2),
    title=st.fixed_dictionaries({"en": hostile_text, "zh": hostile_text}),
    summary=st.fixed_dictionaries({"en": hostile_text, "zh": hostile_text}),
    figures=st.lists(figure_strategy, max_size=8), sources=st.lists(source_strategy, max_size=4),
    mode=st.sampled_from(["extractive", "llm"]))




def _assert_no_slack_mention(texts: list[str], brief_urls: list[str]) -> None:
    allowed = {_safe_url(u) for u in brief_urls if _safe_url(u)}
    for text in texts:
        # Remove our own source links; what is left must hold no control sequence at all.
        stripped = re.sub(r"<([^<>|]+)\|[^<>]*>", lambda m: "" if m.group(1) in allowed else m.group(0), text)
        assert "<" not in stripped and ">" not in stripped, text
        assert not SLACK_SPECIAL.search(stripped), text


@FUZZ
@given(brief_strategy)
def test_slack_rendering_never_lets_a_mention_through(brief):
    text, blocks = render_brief(brief)
    assert len(blocks) <= 50
    _assert_no_slack_mention(mrkdwn_texts(blocks) + [text], [s.url for s in brief.sources])
    assert blocks[0]["text"]["type"] == "plain_text"


@FUZZ
@given(st.lists(brief_strategy, min_size=1, max_size=4))
def test_slack_digest_rendering_never_lets_a_mention_through(briefs):
    now = datetime(2025, 5, 12, 9, tzinfo=timezone.utc)
    digest = Digest(name="morning", title={"en": "Morning <!channel>", "zh": "早报"}, window_start=now, window_end=now,
                    sections=[DigestSection(topic="rare-earth", label={"en": "<@U1>", "zh": "稀土"}, count=len(briefs),
                                            briefs=briefs)])
    for text, blocks in render_digest(digest):
        urls = [s.url for b in briefs for s in b.sources]
        _assert_no_slack_mention(mrkdwn_texts(blocks) + [text], urls)


@FUZZ
@given(brief_strategy)
def test_discord_payload_never_allows_mentions(brief):
    embed = render_brief_embed(brief)
    assert len(embed) <= 6000
    with handle_message_parameters(embeds=[embed], allowed_mentions=NO_MENTIONS, nonce="n" * 25) as params:
        payload = params.payload
    assert payload["allowed_mentions"] == {"parse": []}
    assert "content" not in payload or not payload["content"]


@FUZZ
@given(brief_strategy)
def test_console_rendering_never_crashes(brief):
    out = render_brief_text(brief, color=True)
    assert brief.id in out
