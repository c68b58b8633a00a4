"""identify's shortcuts change nothing: every key is the one the plain implementation gives.

`reference/items_v1.py` is a verbatim copy of bot/items.py before the shortcuts (a plain-URL path
past urlsplit/urlunsplit, NFKC and whitespace collapsing without the slow general case, only
the head of a long text normalised). Every entry we have and a seeded fuzz go through both.
"""

from __future__ import annotations

import random
import unicodedata
from dataclasses import astuple
from datetime import datetime, timedelta, timezone

from bench.corpus import make_corpus, render_feed
from bot.analyse import identity as items
from bot.ingest.parse import parse_feed
from bot.analyse.text import html_to_text
from corpora import feed_files, parsed_entries, seed_pages
from reference import items_v1 as reference



def outcome(func, *args):
    try:
        result = func(*args)
    except Exception as exc:  # noqa: BLE001 - compared, not handled
        return f"raises {type(exc).__name__}: {exc}"
    return astuple(result) if isinstance(result, (items.ItemIdentity, reference.ItemIdentity)) else result


def assert_same(guid, link, title, text, published) -> None:
    args = (guid, link, title, text, published)
    assert outcome(items.identify, *args) == outcome(reference.identify, *args), args
    assert outcome(items.canonical_link, link) == outcome(reference.canonical_link, link), link
    for t in (title, text):
        assert outcome(items._content_norm, t) == outcome(reference._content_norm, t), t


def test_fixture_and_sample_feeds():
    entries = list(parsed_entries(feed_files()))
    assert len(entries) > 10
    for e in entries:
        assert_same(e.guid, e.link, e.title, e.text, e.published)


def test_bench_corpus():
    count = 0
    for feed in make_corpus(60, 20):
        for e in parse_feed(render_feed(feed), feed.content_type, "http://x.test/f").entries:
            assert_same(e.guid, e.link, e.title, e.text, e.published)
            assert_same(None, e.link, e.title, e.text, e.published)
            assert_same(None, None, e.title, e.text, e.published)
            count += 1
    assert count == 1200


def test_real_pages_when_present():
    when = datetime(2025, 6, 9, 8, 30, tzinfo=timezone.utc)
    for page in seed_pages():  # absent in CI: nothing to compare
        raw = page.read_text(encoding="utf-8", errors="replace")
        text = html_to_text(raw)
        title = text.split("\n", 1)[0]
        for body in (raw, text, text[:700], text[:1000], text.replace("\n", " ")):
            assert_same(None, None, title, body, when)
            assert_same(" ", f"https://news.example/{page.stem}", title, body, None)


# --------------------------------------------------------------------------- fuzz

_HOSTS = ["example.com", "www.example.com", "WWW.Example.COM", "news.example", "www.", "a", "user:pw@host.example:8080",
          "Host.Example:443", "[::1]", "[::1", "::1]", "[2001:db8::1]:80", "bücher.example", "ｅｘａｍｐｌｅ.com",
          "a\u2100b.example", "xn--bcher-kva.example", "host_with_underscore", "%41host", "h#", "h?", "", "."]
_PATHS = ["", "/", "//", "/a", "/a/", "/a//", "/a/b.html", "/A/B/", "/新闻/一", "/a b", "/a\tb", "/a\nb", "/a%20b",
          "/[x]", "/;p", "/a/./b/../c", "/~u/", "/a:b", "/@x", "/a\x00b", "/\ud800"]
_QUERIES = ["", "?", "?a=1", "?b=2&a=1", "?utm_source=x&id=7", "?UTM_Medium=y&id=7", "?fbclid=z", "?gclid=1&ref=2",
            "?share=1&from=2&source=3&spm=4", "?mc_cid=1&mc_eid=2&x=", "?x&y=", "?a=1&a=0", "?q=a+b&r=%20c",
            "?k=v;w=u", "?=v", "?a=%zz", "?名=值", "?a=1#frag?x", "?ref", "?a=1&&b=2"]
_FRAGMENTS = ["", "", "#", "#top", "#a?b=1", "#新", "#a b", "#\t"]
_SCHEMES = ["http://", "https://", "HTTP://", "HtTpS://", "ftp://", "mailto:", "", "//", "http:/", "http:///",
            "javascript:", "1http://", "h t tp://", ":"]


def random_link(rng: random.Random) -> str | None:
    r = rng.random()
    if r < 0.05:
        return None
    if r < 0.08:
        return rng.choice(["", " ", "\t\n"])
    link = (rng.choice(_SCHEMES) + rng.choice(_HOSTS) + rng.choice(_PATHS) + rng.choice(_QUERIES)
            + rng.choice(_FRAGMENTS))
    if rng.random() < 0.15:
        link = rng.choice(["  ", "\n", "\x00", "\x1f", "\u3000", "\xa0"]) + link
    if rng.random() < 0.15:
        link += rng.choice(["  ", "\n", "/", "//", "\x00", "\u3000"])
    return link


_WORDS = ["rare", "earth", "Magnet", "EXPORTS", "straße", "ﬁnance", "Σίσυφος", "İstanbul", "ſ", "K", "稀土", "出口",
          "，", "：", "（", "）", "１２３", "ＡＢＣ", "ｶﾞ", "ﾊﾟ", "e\u0301", "\u0301", "가", "\u1100\u1161", "①", "½", "㎏",
          "…", "—", "“", "\u200b", "x\u0327\u0301", "ǅ", "Ǆ", "ﬀ", "\U0001d400", "🙂", "ß"]
_SPACES = [" ", " ", " ", "\n", "\n\n", "  ", "\t", "\r\n", "\u3000", "\xa0", "\u2028", "\x1c", "\x0b", ""]


_PLAIN_WORDS = ["rare", "earths", "said", "on", "Tuesday", "the", "a", "1,200", "tonnes", "U.S.", "it's", "x;", "9.5%"]


def random_text(rng: random.Random, size: int) -> str:
    words = rng.choices(_WORDS + _PLAIN_WORDS * 3, k=size // 4 + 1)
    spaces = rng.choices(_SPACES, k=len(words))
    text = "".join(w + s for w, s in zip(words, spaces))[:size + rng.randint(0, 8)]
    return rng.choice([text, text, text.strip(), " " + text, text.upper()])


def random_published(rng: random.Random) -> datetime | None:
    if rng.random() < 0.4:
        return None
    tz = timezone(timedelta(minutes=rng.choice([0, 0, 60, -300, 330, 525])))
    return datetime(2026, 1, 1, tzinfo=timezone.utc).astimezone(tz) + timedelta(seconds=rng.randint(-10**8, 10**8))


def test_identify_fuzz():
    rng = random.Random(42)
    plain = other = cut = whole = 0
    for _ in range(10000):
        guid = rng.choice([None, "", "  ", "urn:x:1", " g-1 ", "G-1", "新-1", "\t", rng.choice(_WORDS)])
        link = random_link(rng)
        title = random_text(rng, rng.choice([0, 5, 40, 120]))
        text = random_text(rng, rng.choice([0, 50, 400, 700, 760, 900, 1600, 3000]))
        if rng.random() < 0.02:  # a lone surrogate: both raise, and the same way
            title += "\udc80"
        assert_same(guid, link, title, text, random_published(rng))
        if link and link.strip():
            if items._PLAIN_URL_RE.fullmatch(link.strip()):
                plain += 1
            else:
                other += 1
        if len(text) > 760:
            cut += 1
        else:
            whole += 1
    # Both paths of canonical_link and of the text head are exercised, many times.
    assert plain > 1000 and other > 1000 and cut > 1000 and whole > 1000, (plain, other, cut, whole)


def test_text_head_around_the_cut():
    rng = random.Random(5)
    for _ in range(3000):
        size = rng.choice([1, 10, 600])
        text = random_text(rng, rng.randint(0, 3 * size + 200))
        assert items._content_norm_head(text, size) == reference._content_norm(text)[:size], text


def test_canonical_link_on_plain_urls():
    rng = random.Random(3)
    count = 0
    for _ in range(20000):
        link = (rng.choice(["http://", "https://", "HTTP://", "hTTps://"]) + rng.choice(_HOSTS[:12])
                + rng.choice(_PATHS) + rng.choice(_QUERIES) + rng.choice(_FRAGMENTS))
        assert outcome(items.canonical_link, link) == outcome(reference.canonical_link, link), link
        count += bool(items._PLAIN_URL_RE.fullmatch(link))
    assert count > 5000


# --------------------------------------------------------------------------- the facts the shortcuts rest on

def test_nfkc_does_not_join_across_ascii_whitespace():
    # _content_norm_head cuts before an ASCII space or newline and normalises the head alone.
    for i in range(0x110000):
        c = chr(i)
        n = unicodedata.normalize("NFKC", c)
        assert unicodedata.normalize("NFKC", c + " ") == n + " "
        assert unicodedata.normalize("NFKC", c + "\n") == n + "\n"


def test_case_folding_makes_and_takes_no_whitespace():
    for i in range(0x110000):
        c = chr(i)
        folded = c.casefold()
        assert any(f.isspace() for f in folded) == c.isspace(), hex(i)
        if c.isspace():
            assert folded == c


def test_nfkc_on_every_character_and_mixtures():
    for i in range(0, 0x110000, 2048):
        text = "".join(chr(j) for j in range(i, i + 2048) if not 0xD800 <= j < 0xE000)
        assert items._nfkc(text) == unicodedata.normalize("NFKC", text)
    rng = random.Random(9)
    for _ in range(5000):
        text = "".join(rng.choice(_WORDS + _SPACES) for _ in range(rng.randint(0, 30)))
        assert items._nfkc(text) == unicodedata.normalize("NFKC", text), text


def test_collapse_spaces():
    rng = random.Random(1)
    for _ in range(20000):
        text = "".join(rng.choice(_SPACES + ["a", "b", "c", "新", "x."]) for _ in range(rng.randint(0, 20)))
        assert items._collapse_spaces(text) == " ".join(text.split()), repr(text)
