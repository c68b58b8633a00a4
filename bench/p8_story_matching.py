"""P8: story matching on a labelled set of article pairs (tests/story_pairs.py).

Each pair goes through the story index as the pipeline uses it: the first article's story is in
the index, the second asks which story it belongs to; then the other way round. A near miss
merged in either order is a false merge (it would hide an alert); a same-story pair counts as
found only when it merges in both orders. Precision and recall of "same story" follow.

Also the story index's CPU time per feed over the cold-poll corpus (bench/corpus.py): every
on-topic entry of 1,000 feeds looked up and, when new, added, as a cold poll does.
"""

from __future__ import annotations

import html
import re
import time
from collections import Counter
from datetime import datetime, timedelta, timezone

from bench.common import Result, make_settings
from bench.corpus import make_corpus
from bot.analyse.numbers import find_numbers
from bot.analyse.stories import StoryIndex, StorySignature, make_signature, signature_words, story_numbers
from bot.analyse.text import detect_language
from bot.analyse.topics import TopicMatcher
from story_pairs import PAIRS, Article, Pair

NOW = datetime(2026, 11, 21, 8, 0, tzinfo=timezone.utc)


def signature(article: Article, matcher: TopicMatcher) -> StorySignature:
    """The signature the pipeline makes of this article (as bot.pipeline.facts and poll do)."""
    return _signature(article.title, article.body, article.feed, NOW + timedelta(hours=article.hours), matcher)


def _signature(title: str, body: str, feed: str, published: datetime, matcher: TopicMatcher) -> StorySignature:
    both = title + "\n" + body
    numbers = story_numbers(find_numbers(title)) + story_numbers(find_numbers(body))
    return make_signature(title, body, detect_language(both), matcher.match(both), numbers, published,
                          words=signature_words(title, body), feed=feed)


def merges(first: StorySignature, second: StorySignature) -> bool:
    index = StoryIndex()
    index.add("first", first)
    return index.find_same_story(second) == "first"


def evaluate(pairs: list[Pair] = PAIRS) -> dict:
    """Counts of true and false merges over the labelled pairs, and the pairs decided wrongly."""
    matcher = TopicMatcher(make_settings([]))
    found = false_merges = 0
    wrong: list[str] = []
    for pair in pairs:
        a, b = signature(pair.a, matcher), signature(pair.b, matcher)
        ab, ba = merges(a, b), merges(b, a)
        if pair.same and ab and ba:
            found += 1
        elif not pair.same and (ab or ba):
            false_merges += 1
        if (ab and ba) != pair.same or ab != ba:
            wrong.append(f"{'same' if pair.same else pair.kind}: {pair.a.title} | {pair.b.title} ({ab}, {ba})")
    same = sum(p.same for p in pairs)
    merged = found + false_merges
    return {"pairs": len(pairs), "same": same, "apart": len(pairs) - same, "found": found,
            "false_merges": false_merges, "precision": found / merged if merged else 1.0,
            "recall": found / same if same else 1.0, "make_up": dict(Counter(p.kind for p in pairs)), "wrong": wrong}


def index_cpu(n_feeds: int = 1000, items: int = 20, rounds: int = 3) -> dict:
    """CPU seconds the story index spends on a cold poll of the bench corpus (best of `rounds`)."""
    matcher = TopicMatcher(make_settings([]))
    feeds = []
    for spec in make_corpus(n_feeds, items):
        sigs = []
        for it in spec.items:
            text = html.unescape(re.sub(r"<[^>]+>", " ", it.body))
            if matcher.match(it.title + "\n" + text):
                sigs.append(_signature(it.title, text, spec.name, it.published, matcher))
        feeds.append(sigs)
    best, stories = float("inf"), 0
    for _ in range(rounds):
        index, stories, n = StoryIndex(), 0, 0
        t0 = time.process_time()
        for sigs in feeds:
            for sig in sigs:
                n += 1
                if index.find_same_story(sig) is None:
                    stories += 1
                    index.add(f"s{n}", sig)
        best = min(best, time.process_time() - t0)
    return {"feeds": n_feeds, "entries": sum(map(len, feeds)), "stories": stories, "cpu_s": best,
            "us_per_feed": best / n_feeds * 1e6}


def run(n_feeds: int = 1000, items: int = 20, log=print) -> list[Result]:
    got = evaluate()
    cpu = index_cpu(n_feeds, items)
    log(f"P8: precision {got['precision']:.3f}, recall {got['recall']:.3f} on {got['pairs']} pairs; "
        f"index {cpu['us_per_feed']:.0f} µs CPU per feed")
    make_up = "; ".join(f"{n} {kind}" for kind, n in sorted(got["make_up"].items()))
    details = [f"{got['pairs']} labelled pairs (tests/story_pairs.py): {got['same']} the same story, "
               f"{got['apart']} near misses that must stay apart — {make_up}",
               f"{got['found']} of {got['same']} same-story pairs merged in both orders; {got['false_merges']} "
               "near misses merged in either order",
               f"story index on the cold-poll corpus: {cpu['entries']} on-topic entries of {cpu['feeds']} feeds → "
               f"{cpu['stories']} stories, {cpu['cpu_s'] * 1e3:.0f} ms CPU ({cpu['us_per_feed']:.0f} µs per feed)",
               *[f"decided wrongly: {w}" for w in got["wrong"]]]
    passed = got["precision"] == 1.0 and got["recall"] >= 0.9
    return [Result(key="P8", name="P8 story matching (labelled same-story pairs and near misses)",
                   figure=f"precision {got['precision']:.2f}, recall {got['recall']:.2f}",
                   baseline=f"{got['pairs']} pairs ({got['same']} same, {got['apart']} apart)", ratio="—",
                   target="precision 1.0, recall ≥ 0.9", passed=passed, details=details,
                   data={**{k: v for k, v in got.items() if k != "wrong"}, "index": cpu})]
