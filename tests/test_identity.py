"""bot.analyse.identity: the same item is recognised across polls, republished links and churned GUIDs."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from bot.analyse.identity import canonical_link, identify

WHEN = datetime(2026, 3, 1, 8, 30, tzinfo=timezone.utc)


@pytest.mark.parametrize("link, canonical", [
    ("HTTP://WWW.Example.com/a/b/?utm_source=x&b=2&fbclid=z&a=1#top", "https://example.com/a/b?a=1&b=2"),
    ("https://example.com", "https://example.com/"),
    ("  https://news.example/story//  ", "https://news.example/story"),
    ("https://news.example/s?ref=rss&id=7&share=1", "https://news.example/s?id=7"),
    ("ftp://Files.Example/x/", "ftp://files.example/x"),
    ("/relative/path", "/relative/path"),  # no host: kept as written
    ("   ", None),
    (None, None),
])
def test_canonical_link(link, canonical):
    assert canonical_link(link) == canonical


def test_a_guid_identifies_the_item_whatever_its_link():
    first = identify("urn:item:1", "https://a.example/x", "Title", "Body", WHEN)
    moved = identify(" urn:item:1 ", "https://b.example/y", "Title, corrected", "Body", None)
    assert first.item_key == moved.item_key
    assert first.link_key != moved.link_key and first.content_key != moved.content_key


def test_without_a_guid_the_canonical_link_identifies_the_item():
    plain = identify(None, "https://news.example/s?id=7", "Title", "Body", WHEN)
    tracked = identify("  ", "http://www.news.example/s/?utm_medium=rss&id=7#comments", "Other", "", None)
    assert plain.item_key == tracked.item_key == "l:" + plain.link_key


def test_without_guid_or_link_title_and_time_identify_the_item():
    item = identify(None, None, "Gallium  exports", "Body", WHEN)
    assert item.link_key is None
    assert item.item_key == identify(None, "", "gallium exports", "Other body", WHEN).item_key
    assert item.item_key != identify(None, None, "Gallium exports", "Body", None).item_key


def test_content_key_ignores_case_width_and_spacing_and_the_body_past_its_head():
    item = identify(None, None, "Rare  Earth\nPrices", "Ｐｒｉｃｅｓ rose\n\n４.５%", WHEN)
    assert item.content_key == identify(None, None, "rare earth prices", "prices rose 4.5%", None).content_key
    long_body = "word " * 200
    assert identify(None, None, "T", long_body + "A", None).content_key == \
        identify(None, None, "T", long_body + "B", None).content_key
    assert identify(None, None, "T", "short A", None).content_key != \
        identify(None, None, "T", "short B", None).content_key
    assert identify(None, None, "", "", None).content_key is None
