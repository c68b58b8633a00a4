"""Story matching never merges different stories: the labelled pairs, generic words, one feed's
items, and the steel/avocado case through the pipeline on a loopback feed server."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone

from feedgen import Entry, make_env, make_settings, rss
from loopback import Reply
from story_pairs import LATER, ONE_OFFICIAL, OTHER_SUBJECT, PAIRS, SAME_DAY

from bench.common import make_settings as bench_settings
from bench.p8_story_matching import evaluate, signature
from bot.analyse.stories import StoryIndex, entities_in, make_signature
from bot.analyse.topics import TopicMatcher
from bot.app.container import build_app, close_app, make_poller

NOW = datetime(2026, 11, 21, 8, 0, tzinfo=timezone.utc)


def test_the_labelled_set_is_big_balanced_and_varied():
    kinds = Counter(p.kind for p in PAIRS)
    same = sum(p.same for p in PAIRS)
    assert len(PAIRS) >= 60 and same >= 30 and len(PAIRS) - same >= 30
    assert all(kinds[k] >= 3 for k in ("en-en", "en-zh", "zh-zh", OTHER_SUBJECT, LATER, SAME_DAY, ONE_OFFICIAL))
    assert all(p.a.feed != p.b.feed for p in PAIRS)  # the matching decides, not the one-feed rule
    assert len({(p.a, p.b) for p in PAIRS}) == len(PAIRS)
    matcher = TopicMatcher(bench_settings([]))
    assert all(signature(article, matcher).topics for p in PAIRS for article in (p.a, p.b))
    spellings = [p for p in PAIRS if p.same and "HK$80 million" in p.a.body and "8000万港元" in p.b.body]
    assert spellings


def test_matching_never_merges_a_near_miss_and_finds_nine_in_ten_same_stories():
    got = evaluate()
    assert got["false_merges"] == 0 and got["precision"] == 1.0, got["wrong"]
    assert got["recall"] >= 0.9, got["wrong"]


def test_generic_capitalised_words_are_not_entities():
    found = entities_in("The White House said on Tuesday that the United States will impose a tariff on "
                        "steel from Canada. President Trump met JOGMEC officials in Seadrift.")
    assert not {e for e in found if e.startswith("name:")} - {"name:jogmec", "name:seadrift"}
    assert {"white-house", "us", "canada", "steel", "trump", "name:jogmec", "name:seadrift"} <= found
    assert "us" not in entities_in("Officials told us the tariff stays.")  # the pronoun, not the country
    assert "name:tariffs" not in entities_in("Tariffs rise. Beijing said Tariffs rise.")  # a sentence's first word


def _sig(title: str, text: str, feed: str):
    return make_signature(title, text, "en", ["tariff"], [(30.0, "t")], NOW, feed=feed)


def test_one_feeds_items_are_other_stories_unless_another_outlet_joins():
    first = _sig("Customs seize 30 tonnes of smuggled antimony in Guangdong",
                 "Customs in Guangdong seized 30 tonnes of smuggled antimony.", "a")
    again = _sig("Guangdong customs seize 30 tonnes of antimony in smuggling case",
                 "Guangdong customs seized 30 tonnes of smuggled antimony.", "a")
    index = StoryIndex()
    index.add("s1", first)
    assert index.find_same_story(again) is None  # the same feed: another story
    other_outlet = _sig("Guangdong customs seize 30 tonnes of antimony in smuggling case",
                        "Guangdong customs seized 30 tonnes of smuggled antimony.", "b")
    assert index.find_same_story(other_outlet) == "s1"
    index.joined("s1", "b")
    later_from_b = _sig("Antimony smuggling: 30 tonnes seized by customs in Guangdong",
                        "Customs in Guangdong seized 30 tonnes of smuggled antimony.", "b")
    assert index.find_same_story(later_from_b) is None  # b already told this story


async def test_steel_and_avocado_tariffs_from_two_outlets_are_two_briefs(http_server, tmp_path, db_url):
    steel = Entry("US to impose 25% tariff on Canadian steel",
                  "The White House said on Tuesday that the United States will impose a 25% tariff on steel "
                  "imported from Canada from March 12, citing national security.", guid="a-1",
                  link="https://a.example/steel")
    avocado = Entry("US to impose 25% tariff on Mexican avocados",
                    "The White House said on Tuesday that the United States will impose a 25% tariff on avocados "
                    "imported from Mexico from March 12, citing national security.", guid="b-1",
                    link="https://b.example/avocado")
    http_server.route("/a.xml", Reply(200, rss([steel]), content_type="application/rss+xml"))
    http_server.route("/b.xml", Reply(200, rss([avocado]), content_type="application/rss+xml"))
    settings = make_settings(tmp_path, [{"name": n, "url": http_server.url(f"/{n}.xml")} for n in "ab"])
    app = build_app(settings, make_env(db_url))
    try:
        reports = await make_poller(app).poll_all(force=True)
    finally:
        await close_app(app)
    assert sum(len(r.new_briefs) for r in reports) == 2 and sum(r.merged for r in reports) == 0
    titles = sorted(b.sources[0].title for b in app.store.latest_briefs("tariff"))
    assert titles == sorted([avocado.title, steel.title])


async def test_a_feed_of_distinct_items_gives_one_brief_per_item(http_server, tmp_path, db_url):
    # Every item tells a story the matcher would merge across outlets (same figure, place and
    # goods), each under its own GUID, link and title.
    n = 300
    entries = [Entry(f"Customs seize 30 tonnes of smuggled antimony in Guangdong, case {i:03d}",
                     "Customs officers in Guangdong seized 30 tonnes of antimony ingots declared as zinc alloy.",
                     guid=f"item-{i}", link=f"https://wire.example/antimony/{i}") for i in range(n)]
    http_server.route("/feed.xml", Reply(200, rss(entries), content_type="application/rss+xml"))
    # Story matching, not the flood guard, is under test: its per-poll cap is lifted.
    settings = make_settings(tmp_path, [{"name": "wire", "url": http_server.url("/feed.xml")}],
                             max_new_per_poll=100_000)
    app = build_app(settings, make_env(db_url))
    try:
        (report,) = await make_poller(app).poll_all(force=True)
    finally:
        await close_app(app)
    assert report.merged == 0 and len(report.new_briefs) == n
    assert app.store.count_briefs() == n
