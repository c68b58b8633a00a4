"""Scale-out on PostgreSQL: the Store contract on a real server, claims under concurrency, and
three `briefbot run` worker processes sharing 200 loopback feeds (one killed with SIGKILL mid-run).

The contract tests run on SQLite too, so the two backends are held to the same behaviour.
"""

from __future__ import annotations

import json
from collections import Counter
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml
from feedgen import TOPICS, Entry, atom, rss
from loopback import LoopbackServer, Reply, Request
from pg import any_db_url, pg_server, pg_url  # noqa: F401  (pytest fixtures)
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select, text
from storedata import item_row, save_brief

from bot.analyse.identity import ItemIdentity
from bot.models import Brief, Digest, Figure, Source, utcnow
from bot.store import ItemRecord, PollWrites, Store, StoryJoin, as_utc
from bot.store import schema as t
from bot.store.migrate import current_revision, head_revision, migration_lock

MINUTE = timedelta(minutes=1)




@pytest.fixture
def store(any_db_url):
    s = Store(any_db_url)
    s.create()
    yield s
    s.close()


def gallium_brief(brief_id: str = "b_9f1c2e3d4a5b6c7d") -> Brief:
    return Brief(
        id=brief_id, topics=["rare-earth"], mode="extractive",
        title={"en": "Gallium export licences resume for 40 tonnes", "zh": "40吨镓出口许可恢复发放"},
        summary={"en": "Beijing approved licences for 40 tonnes of gallium; prices fell 3.2%.",
                 "zh": "北京批准了40吨镓的出口许可，价格下跌3.2%。"},
        figures=[Figure(text="40 tonnes", value=40, unit="t", label={"en": "gallium licensed", "zh": "获批镓"}),
                 Figure(text="3.2%", value=3.2, unit="%", label={"en": "price change", "zh": "价格变化"})],
        sources=[Source(url="https://metals.example/gallium", feed="metals-wire",
                        title="Gallium export licences resume for 40 tonnes",
                        published=datetime(2026, 3, 2, 7, 0, tzinfo=timezone.utc))],
        created=datetime(2026, 3, 2, 8, 30, tzinfo=timezone.utc))


def item(feed: str, key: str, status: str = "briefed", topics: list[str] | None = None, **kw) -> ItemRecord:
    values = dict(guid=f"guid-{key}", link=f"https://{feed}.example/{key}", link_key=f"link-{key}",
                  content_key=f"content-{key}", title=f"title {key}", published=None)
    values.update(kw)
    return ItemRecord(feed=feed, item_key=key, status=status, topics=topics or [], **values)


def claim(store: Store, name: str, owner: str, now: datetime, force: bool = False) -> bool:
    """Whether `owner` won the claim on the feed's next poll."""
    return name in store.claim_feed_states([name], owner, MINUTE, now=now, force=force)


# --------------------------------------------------------------------------- the Store contract

def test_feeds_state_claims_and_timezones(store):
    store.ensure_feed("metals-wire", "https://metals.example/feed.xml")
    store.ensure_feed("metals-wire", "https://metals.example/feed.xml")  # idempotent
    store.ensure_feed("trade-desk", "https://trade.example/atom")
    assert [f.name for f in store.feed_states()] == ["metals-wire", "trade-desk"]

    # Callers pass aware UTC (SQLite keeps no offset); microseconds and the instant survive the trip.
    fetched = datetime(2026, 3, 2, 8, 0, 5, 250000, tzinfo=timezone.utc)
    store.update_feed("metals-wire", etag='"v1"', last_fetch_at=fetched, next_poll_at=fetched + 10 * MINUTE,
                      failures=2, first_polled=True, last_status="ok")
    state = store.feed_state("metals-wire")
    assert state.last_fetch_at == fetched and state.last_fetch_at.utcoffset() == timedelta(0)
    assert state.next_poll_at == fetched + 10 * MINUTE and state.last_fetch_at.microsecond == 250000
    assert (state.etag, state.failures, state.first_polled) == ('"v1"', 2, True)
    with pytest.raises(ValueError, match="unknown feed state fields"):
        store.update_feed("metals-wire", colour="red")
    # A new URL is a new feed: validators and health are forgotten.
    store.ensure_feed("metals-wire", "https://metals.example/feed-v2.xml")
    state = store.feed_state("metals-wire")
    assert (state.url, state.etag, state.failures, state.next_poll_at) == (
        "https://metals.example/feed-v2.xml", None, 0, None)

    now = utcnow()
    lease = MINUTE
    assert claim(store, "trade-desk", "w1", now=now)
    assert not claim(store, "trade-desk", "w2", now=now + timedelta(seconds=30))  # leased elsewhere
    assert claim(store, "trade-desk", "w1", now=now + timedelta(seconds=30))  # the owner may renew
    store.release_feed("trade-desk", "w2")  # not the owner: no effect
    assert not claim(store, "trade-desk", "w2", now=now + timedelta(seconds=60))
    # The owner died: once its lease runs out, another worker takes the feed over.
    assert claim(store, "trade-desk", "w2", now=now + timedelta(seconds=91))
    store.release_feed("trade-desk", "w2")
    store.update_feed("trade-desk", next_poll_at=now + 10 * MINUTE)
    assert not claim(store, "trade-desk", "w1", now=now + MINUTE)  # not due yet
    assert claim(store, "trade-desk", "w1", now=now + MINUTE, force=True)
    store.release_feed("trade-desk", "w1")
    # Claim and read the state in one statement; record the poll and release the lease in another.
    states = store.claim_feed_states(["trade-desk", "metals-wire"], "w1", lease, now=now + 11 * MINUTE)
    assert sorted(states) == ["metals-wire", "trade-desk"]
    assert states["trade-desk"].name == "trade-desk" and states["trade-desk"].next_poll_at == now + 10 * MINUTE
    assert store.claim_feed_states(["trade-desk"], "w2", lease, now=now + 11 * MINUTE) == {}
    store.update_feed("trade-desk", release_owner="w2", last_status="ok")  # not w2's lease: it stays
    assert not claim(store, "trade-desk", "w2", now=now + 11 * MINUTE, force=True)
    store.update_feed("trade-desk", release_owner="w1", last_status="ok", next_poll_at=now + 20 * MINUTE)
    assert store.feed_state("trade-desk").last_status == "ok"
    assert claim(store, "trade-desk", "w2", now=now + 11 * MINUTE, force=True)
    store.release_feed("trade-desk", "w2")
    store.update_feed("trade-desk", disabled_reason="feed gone (HTTP 410)")
    assert not claim(store, "trade-desk", "w1", now=now + 20 * MINUTE, force=True)


def test_items_briefs_and_queries(store):
    store.ensure_feed("metals-wire", "https://metals.example/feed.xml")
    quiet = item("metals-wire", "k-football", status="irrelevant")
    store.write_poll(PollWrites(quiet=[quiet]))
    store.write_poll(PollWrites(quiet=[quiet]))  # recorded already (a second worker): ignored, not an error
    assert store.feed_state("metals-wire").items_total == 1
    known = store.known_item_keys("metals-wire", [ItemIdentity("k-football", None, None),
                                                  ItemIdentity("k-unknown", "link-unknown", None)])
    assert "k-football" in known and not known & {"k-unknown", "link-unknown"}
    # GUID churn: a new key with the same canonical link is known through the link.
    assert store.known_item_keys("metals-wire", [ItemIdentity("k-new-guid", "link-k-football", None)]) >= {
        "link-k-football"}
    assert store.known_item_keys("trade-desk", [ItemIdentity("k-football", None, None)]) == set()

    brief = gallium_brief()
    signature = {"lang": "en", "topics": ["rare-earth"], "numbers": [[40.0, "t"], [3.2, "%"]]}
    targets = ["jsonl:out/briefs.jsonl", "console", "console"]  # a repeated target is queued once
    assert save_brief(store, brief, item("metals-wire", "k-gallium", topics=["rare-earth"]), targets, signature,
                      language="en")
    # The same item again (another worker got there first): refused, nothing stored.
    rival = brief.model_copy(update={"id": "b_rival00000000000"})
    assert not save_brief(store, rival, item("metals-wire", "k-gallium"), ["console"], signature)
    assert store.get_brief(rival.id) is None and store.count_briefs() == 1
    assert store.get_brief(brief.id) == brief
    assert [(r.target, r.status) for r in store.outbox_rows(ref_id=brief.id)] == [
        ("jsonl:out/briefs.jsonl", "pending"), ("console", "pending")]
    assert store.feed_state("metals-wire").items_total == 2

    zh_source = Source(url="https://huashang.example/ga.html", feed="huashang", title="镓出口许可恢复",
                       published=datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc))
    store.ensure_feed("huashang", "https://huashang.example/rss")
    join = StoryJoin(brief.id, item("huashang", "k-ga-zh", status="merged"), zh_source)
    assert store.write_poll(PollWrites(joins=[join])).joins == [join]
    again = StoryJoin(brief.id, item("huashang", "k-ga-zh", status="merged"), zh_source)
    assert store.write_poll(PollWrites(joins=[again])).dropped_joins == [again]  # recorded already
    merged = store.get_brief(brief.id)
    assert [s.feed for s in merged.sources] == ["metals-wire", "huashang"]
    assert item_row(store, "huashang", "k-ga-zh")["brief_id"] == brief.id

    assert store.latest_briefs("rare-earth") == [merged]
    assert store.latest_briefs(None) == [merged] and store.latest_briefs("tariff") == []
    assert store.search_briefs(["GALLIUM", "licences"]) == [merged]
    assert store.search_briefs(["镓出口"]) == [merged]
    assert store.search_briefs(["3.2%"]) == [merged] and store.search_briefs(["3_2"]) == []  # LIKE escaped
    start, end = datetime(2026, 3, 2, tzinfo=timezone.utc), datetime(2026, 3, 3, tzinfo=timezone.utc)
    assert store.briefs_between(start, end) == [merged]
    assert store.briefs_between(start, end, topics=["tariff"]) == []
    assert store.briefs_between(start - timedelta(days=1), start) == []  # created after the window
    assert store.story_candidates(start) == [(brief.id, signature, "en")]


def test_outbox_claims_retries_and_lease_expiry(store):
    now = utcnow()
    store.enqueue("brief", "b_a", ["console", "jsonl:out/a.jsonl"], now=now)
    store.enqueue("brief", "b_a", ["console"], now=now)  # unique per (kind, ref, target)
    assert store.outbox_backlog() == 2
    rows = store.claim_outbox("w1", MINUTE, now=now)
    assert [r.target for r in rows] == ["console", "jsonl:out/a.jsonl"]
    assert rows[0].created == now and rows[0].next_attempt_at.tzinfo is not None
    assert store.claim_outbox("w2", MINUTE, now=now) == []  # leased by w1

    store.outbox_attempt(rows[0].id)
    store.outbox_sent(rows[0].id, external_id="1712345678.000100")
    store.outbox_attempt(rows[1].id)
    store.outbox_retry(rows[1].id, "disk full", now + timedelta(seconds=30))
    assert store.claim_outbox("w2", MINUTE, now=now + timedelta(seconds=10)) == []  # backing off
    again = store.claim_outbox("w2", MINUTE, now=now + timedelta(seconds=31))
    assert [(r.id, r.attempts, r.last_error) for r in again] == [(rows[1].id, 1, "disk full")]
    store.outbox_failed(again[0].id, "permission denied")
    assert store.outbox_backlog() == 0
    assert store.requeue_failed() == 1 and store.requeue_failed() == 0
    sent = store.outbox_rows(status="sent")
    assert [(r.id, r.external_id, r.attempts) for r in sent] == [(rows[0].id, "1712345678.000100", 1)]

    # A worker that dies holding rows: nobody else gets them until its lease runs out.
    later = utcnow() + timedelta(seconds=5)
    held = store.claim_outbox("dead-worker", MINUTE, now=later)
    assert [r.id for r in held] == [rows[1].id]
    assert store.claim_outbox("w3", MINUTE, now=later + timedelta(seconds=59)) == []
    assert [r.id for r in store.claim_outbox("w3", MINUTE, now=later + timedelta(seconds=61))] == [rows[1].id]


def test_digest_runs_llm_cache_usage_and_leases(store):
    scheduled = datetime(2026, 3, 2, 0, 0, tzinfo=timezone.utc)
    digest = Digest(name="morning", title={"en": "Morning brief", "zh": "早报"},
                    window_start=scheduled - timedelta(days=1), window_end=scheduled, timezone="Asia/Shanghai")
    assert store.claim_digest_run("morning", "2026-03-02", scheduled, "w1", doc=digest.to_json_dict())
    assert not store.claim_digest_run("morning", "2026-03-02", scheduled, "w2")
    assert store.claim_digest_run("morning", "2026-03-03", scheduled + timedelta(days=1), "w2")
    run = store.get_digest_run("morning:2026-03-02")
    assert Digest.model_validate(run["doc"]) == digest and run["owner"] == "w1"
    assert as_utc(run["scheduled_for"]) == scheduled
    assert [r["id"] for r in store.digest_runs("morning")] == ["morning:2026-03-02", "morning:2026-03-03"]
    assert store.get_digest_run("morning:2026-03-04") is None

    assert store.cache_get("k1") is None
    store.cache_put("k1", {"title": {"zh": "稀土"}, "figures": [1, 2.5]})
    store.cache_put("k1", {"title": "second writer"})  # the first reply stays
    assert store.cache_get("k1") == {"title": {"zh": "稀土"}, "figures": [1, 2.5]}

    day = datetime(2026, 3, 2, 12, tzinfo=timezone.utc)
    store.record_llm_usage("gpt-4o-mini", "brief", 1200, 300, 850.5, "ok", now=day)
    store.record_llm_usage("gpt-4o-mini", "repair", 3_000_000_000, 7, None, "rejected", now=day)
    assert store.llm_tokens_on("2026-03-02") == 3_000_001_507 and store.llm_tokens_on("2026-03-01") == 0
    usage = store.llm_usage_by_day()
    assert usage == [{"day": "2026-03-02", "calls": 2, "prompt_tokens": 3_000_001_200, "completion_tokens": 307,
                      "estimated_calls": 0}]
    assert all(type(usage[0][k]) is int for k in ("calls", "prompt_tokens", "completion_tokens"))

    now = utcnow()
    assert store.try_lease("digest:morning:2026-03-02", "w1", MINUTE, now=now)
    assert not store.try_lease("digest:morning:2026-03-02", "w2", MINUTE, now=now + timedelta(seconds=10))
    assert store.try_lease("digest:morning:2026-03-02", "w1", MINUTE, now=now + timedelta(seconds=10))
    store.release_lease("digest:morning:2026-03-02", "w2")  # not the owner: no effect
    assert not store.try_lease("digest:morning:2026-03-02", "w2", MINUTE, now=now + timedelta(seconds=20))
    assert store.try_lease("digest:morning:2026-03-02", "w2", MINUTE, now=now + timedelta(seconds=71))  # expired
    store.release_lease("digest:morning:2026-03-02", "w2")
    assert store.try_lease("digest:morning:2026-03-02", "w3", MINUTE, now=now + timedelta(seconds=72))


# --------------------------------------------------------------------------- claims under concurrency

def run_race(url: str, workers: int, fn) -> list:
    """Run fn(worker_index, store) in `workers` threads, each with its own Store (own connections),
    released together by a barrier. Returns the results in worker order."""
    barrier = threading.Barrier(workers)
    results: list = [None] * workers
    errors: list[BaseException] = []

    def run(i: int) -> None:
        s = Store(url)
        try:
            barrier.wait(timeout=30)
            results[i] = fn(i, s)
        except BaseException as exc:  # asserted below
            errors.append(exc)
        finally:
            s.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(workers)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=60)
    assert not any(th.is_alive() for th in threads), "a racing worker hung"
    assert errors == []
    return results


def test_two_workers_claim_each_feed_once(store):
    names = [f"wire-{i:02d}" for i in range(60)]
    for name in names:
        store.ensure_feed(name, f"https://wire.example/{name}.xml")
    now = utcnow()

    def claim_all(i: int, s: Store) -> set[str]:
        return {n for n in names if claim(s, n, f"worker-{i}", now)}

    first, second = run_race(store.url, 2, claim_all)
    assert first.isdisjoint(second) and first | second == set(names)
    with store.engine.connect() as c:
        owners = dict(c.execute(select(t.feeds.c.name, t.feeds.c.lease_owner)).all())
    assert {n for n, o in owners.items() if o == "worker-0"} == first


def test_workers_claim_each_outbox_row_once(store):
    now = utcnow()
    for i in range(150):
        store.enqueue("brief", f"b_{i:04d}", ["jsonl:out/briefs.jsonl"], now=now - timedelta(seconds=1))

    def drain(i: int, s: Store) -> list[int]:
        got: list[int] = []
        while rows := s.claim_outbox(f"worker-{i}", MINUTE, limit=20):
            for row in rows:
                s.outbox_attempt(row.id)
                s.outbox_sent(row.id)
                got.append(row.id)
        return got

    claimed = run_race(store.url, 3, drain)
    every = [row_id for ids in claimed for row_id in ids]
    assert len(every) == len(set(every)) == 150  # each row claimed (and "sent") exactly once
    assert {r.attempts for r in store.outbox_rows()} == {1} and store.outbox_backlog() == 0


def test_racing_workers_store_one_brief_and_one_digest(store):
    store.ensure_feed("metals-wire", "https://metals.example/feed.xml")
    scheduled = datetime(2026, 3, 2, tzinfo=timezone.utc)

    def save(i: int, s: Store) -> tuple[bool, bool]:
        brief = gallium_brief(f"b_worker{i:010d}")
        saved = save_brief(s, brief, item("metals-wire", "k-same-entry", topics=["rare-earth"]),
                           ["console"], {"lang": "en"}, language="en")
        s.ensure_feed("trade-desk", "https://trade.example/atom")  # created once, no error for the others
        return saved, s.claim_digest_run("morning", "2026-03-02", scheduled, f"worker-{i}")

    results = run_race(store.url, 4, save)
    assert sorted(saved for saved, _ in results) == [False, False, False, True]
    assert sorted(digest for _, digest in results) == [False, False, False, True]
    winner = next(i for i, (saved, _) in enumerate(results) if saved)
    assert store.count_briefs() == 1 and store.get_brief(f"b_worker{winner:010d}") is not None
    assert [r.ref_id for r in store.outbox_rows()] == [f"b_worker{winner:010d}"]
    assert len(store.digest_runs("morning")) == 1 and len(store.feed_states()) == 2


# --------------------------------------------------------------------------- 3 workers, 200 feeds

FEEDS = 200
DUPLICATE_PAIRS = 5
LEASE_SECONDS = 8

_ONSETS = "b d f g k l m n p r s t v z".split()
_VOWELS = "a e i o u".split()


def word(n: int) -> str:
    """A distinct made-up word per integer, so distinct stories share no title words by accident."""
    n += 5000
    out = []
    while n:
        n, r = divmod(n, len(_ONSETS) * len(_VOWELS))
        out.append(_ONSETS[r % len(_ONSETS)] + _VOWELS[r // len(_ONSETS)])
    return "".join(out)


def tonnes(k: int) -> int:
    # Distinct by more than the story matcher's 0.5% tolerance, so no two stories share a figure.
    return round(1000 * 1.012 ** k)


def story(k: int, feed: int) -> Entry:
    """Story k: its own words and its own figure; rare-earth or tariff news."""
    w = [word(10 * k + i) for i in range(6)]
    q = f"{tonnes(k):,}"
    if k % 3 == 0:
        title = f"{w[0].title()} {w[1]} tariff {w[2]} {w[3]}"
        body = (f"{w[0].title()} officials set a tariff on {q} tonnes of {w[4]} goods shipped through {w[5]}. "
                f"Importers in {w[2]} said the tariff would change their {w[3]} orders.")
    else:
        title = f"{w[0].title()} {w[1]} rare earth {w[2]} {w[3]}"
        body = (f"{w[0].title()} said its {w[1]} plant will ship {q} tonnes of rare earth oxide to {w[4]} buyers. "
                f"Output at {w[5]} is expected to stay steady.")
    return Entry(title, body, guid=f"urn:briefbot-test:story-{k}-feed-{feed}",
                 link=f"https://outlet{feed}.example/news/{k}")


def duplicate_pair(d: int, feed_a: int, feed_b: int) -> tuple[Entry, Entry]:
    """The same story told by two outlets in their own words: the shared figures make it one story."""
    q, pct = f"{tonnes(900 + d):,}", f"{11.5 + 1.7 * d:.1f}%"
    a = [word(20000 + 20 * d + i) for i in range(10)]
    first = Entry(f"{a[0].title()} {a[1]} rare earth {a[2]} {a[3]}",
                  f"{a[0].title()} cut rare earth export quotas to {q} tonnes, down {pct} from last year.",
                  guid=f"urn:briefbot-test:dup-{d}-feed-{feed_a}", link=f"https://outlet{feed_a}.example/dup/{d}")
    second = Entry(f"{a[5].title()} {a[6]} {a[7]} rare earth {a[8]}",
                   f"Quotas for rare earth exports fall {pct} to {q} tonnes, {a[5].title()} reports from {a[9]}.",
                   guid=f"urn:briefbot-test:dup-{d}-feed-{feed_b}", link=f"https://outlet{feed_b}.example/dup/{d}")
    return first, second


def irrelevant(feed: int) -> Entry:
    w = [word(40000 + 10 * feed + i) for i in range(3)]
    return Entry(f"{w[0].title()} wins the {w[1]} cup final", f"A late goal in {w[2]} sealed the match 3-1.",
                 guid=f"urn:briefbot-test:football-feed-{feed}", link=f"https://outlet{feed}.example/sport/{feed}")


@dataclass
class Fleet:
    """The feeds of the scale-out test and what a correct run must produce from them."""

    round1: dict[int, list[Entry]]
    round2: dict[int, list[Entry]]
    relevant1: set[tuple[str, str]]  # (feed name, guid)
    relevant2: set[tuple[str, str]]
    irrelevant: set[tuple[str, str]]
    # Same story in two feeds at once (round 1) / the second outlet a round later.
    simultaneous: list[tuple[tuple[str, str], tuple[str, str]]]
    staggered: list[tuple[tuple[str, str], tuple[str, str]]]


def feed_name(f: int) -> str:
    return f"outlet-{f:03d}"


def build_fleet() -> Fleet:
    # One new story per feed and round, a second one in every fourth feed, one off-topic item each.
    # (Few enough briefs overall that every story stays among the matcher's 500 recent candidates.)
    round1: dict[int, list[Entry]] = {
        f: [story(2 * f, f)] + ([story(2 * f + 1, f)] if f % 4 == 0 else []) + [irrelevant(f)]
        for f in range(FEEDS)}
    round2 = {f: [story(1000 + f, f)] + list(entries) for f, entries in round1.items()}
    simultaneous, staggered = [], []
    for d in range(2 * DUPLICATE_PAIRS):
        fa = 11 * d + 3
        fb = (fa + 100) % FEEDS
        first, second = duplicate_pair(d, fa, fb)
        pair = ((feed_name(fa), first.guid), (feed_name(fb), second.guid))
        round1[fa].append(first)
        round2[fa].append(first)
        if d < DUPLICATE_PAIRS:
            round1[fb].insert(0, second)
            round2[fb].insert(1, second)
            simultaneous.append(pair)
        else:
            round2[fb].insert(1, second)
            staggered.append(pair)
    relevant1 = {(feed_name(f), e.guid) for f, es in round1.items() for e in es if "football" not in e.guid}
    relevant2 = {(feed_name(f), e.guid) for f, es in round2.items() for e in es
                 if "football" not in e.guid} - relevant1
    irrelevant_ = {(feed_name(f), irrelevant(f).guid) for f in range(FEEDS)}
    return Fleet(round1, round2, relevant1, relevant2, irrelevant_, simultaneous, staggered)


class FeedFarm:
    """Serves the fleet's feeds (RSS, Atom, some GBK) and counts each feed's fetches. Round 2's
    replies are held until `release()`, so whoever fetched a feed then holds its lease until the
    test lets it go on."""

    def __init__(self, fleet: Fleet):
        self.fleet = fleet
        self.fetches: Counter[str] = Counter()
        self._released = threading.Event()
        self._lock = threading.Lock()
        self.round = 0
        self._replies: dict[int, Reply] = {}
        self.start_round(1)
        self.server = LoopbackServer()
        # Three workers open ~200 connections at once; the socketserver default backlog of 5 drops
        # handshakes and stalls fetches for seconds (SYN-ACK retransmits), which is not what is tested.
        self.server.httpd.socket.listen(1024)
        self.server.route("*", self._serve)

    def start_round(self, number: int) -> None:
        """Publish the round's documents (rendered once: an unchanged feed answers byte-identical bodies)."""
        entries = self.fleet.round1 if number == 1 else self.fleet.round2
        replies = {}
        for f, es in entries.items():
            if f % 2:
                replies[f] = Reply(200, atom(es, title=f"Outlet {f}"), content_type="application/atom+xml")
            elif f % 10 == 4:
                replies[f] = Reply(200, rss(es, title=f"Outlet {f}", encoding="gbk"),
                                   content_type="text/xml; charset=gbk")
            else:
                replies[f] = Reply(200, rss(es, title=f"Outlet {f}"), content_type="application/rss+xml")
        with self._lock:
            self.round, self._replies = number, replies

    def url(self, f: int) -> str:
        return self.server.url(f"/feeds/{feed_name(f)}.xml")

    def release(self) -> None:
        """Answer the held round-2 fetches, and every later one at once."""
        self._released.set()

    def _serve(self, req: Request) -> Reply:
        name = req.path.rsplit("/", 1)[-1].removesuffix(".xml")
        with self._lock:
            self.fetches[name] += 1
            reply, held = self._replies[int(name.rsplit("-", 1)[-1])], self.round == 2
        if held:
            assert self._released.wait(120), "round 2's feeds were never released"
        return reply


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Worker:
    proc: subprocess.Popen
    metrics_port: int
    log: Path

    @property
    def worker_id(self) -> str:
        return f"{socket.gethostname()}:{self.proc.pid}"

    def metric(self, name: str, **labels: str) -> float:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10) as resp:
            text = resp.read().decode()
        total = 0.0
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                    total += sample.value
        return total


def start_worker(i: int, workdir: Path, db_url: str, config: Path) -> Worker:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BRIEFBOT_", "SLACK_", "DISCORD_", "OPENAI_"))}
    port = free_port()
    env.update(DATABASE_URL=db_url, BRIEFBOT_CONFIG=str(config), BRIEFBOT_ALLOW_PRIVATE_URLS="1",
               METRICS_PORT=str(port), BRIEFBOT_LEASE_SECONDS=str(LEASE_SECONDS), BRIEFBOT_LOG_LEVEL="INFO",
               PYTHONUNBUFFERED="1")
    env.pop("PORT", None)
    log = workdir / f"worker-{i}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "bot", "run"], cwd=workdir, env=env, stdout=out,
                                stderr=subprocess.STDOUT)
    return Worker(proc, port, log)


def wait_for(what: str, predicate, timeout: float, diagnostics) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}\n{diagnostics()}", pytrace=False)
        time.sleep(0.2)


class Observer:
    """The test's read-only view of the shared database."""

    def __init__(self, url: str):
        self.store = Store(url)

    def items(self) -> dict[tuple[str, str], tuple[str, str | None]]:
        with self.store.engine.connect() as c:
            rows = c.execute(select(t.items.c.feed, t.items.c.guid, t.items.c.status, t.items.c.brief_id)).all()
        return {(r.feed, r.guid): (r.status, r.brief_id) for r in rows}

    def brief_ids(self) -> set[str]:
        with self.store.engine.connect() as c:
            return set(c.execute(select(t.briefs.c.id)).scalars())

    def done(self, relevant: set[tuple[str, str]]) -> bool:
        items = self.items()
        if not all(items.get(key, ("",))[0] in ("briefed", "merged") for key in relevant):
            return False
        rows = self.store.outbox_rows()
        return bool(rows) and all(r.status == "sent" for r in rows) and len(rows) == len(self.brief_ids())

    def waiting_on_locks(self) -> int:
        with self.store.engine.connect() as c:
            return c.execute(text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
                                  "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
                                  )).scalar_one()

    def leased_by(self, owner: str) -> set[str]:
        with self.store.engine.connect() as c:
            return set(c.execute(select(t.feeds.c.name).where(t.feeds.c.lease_owner == owner,
                                                              t.feeds.c.lease_until > utcnow())).scalars())


def jsonl_ids(path: Path) -> list[str]:
    if not path.exists():
        return []
    return [json.loads(line)["id"] for line in path.read_text(encoding="utf-8").splitlines()]


def check_exactly_once(obs: Observer, fleet: Fleet, relevant: set[tuple[str, str]], out: Path) -> tuple[int, int]:
    """Every relevant item is in exactly one brief, every brief delivered exactly once. Returns
    (briefs, simultaneous duplicate pairs that became two briefs: none)."""
    items = obs.items()
    briefs = obs.brief_ids()
    missing = [k for k in relevant if items.get(k, ("",))[0] not in ("briefed", "merged")]
    assert missing == [], f"{len(missing)} relevant items never briefed, e.g. {missing[:3]}"
    assert all(items[k][1] in briefs for k in relevant)  # each points at a stored brief
    assert all(items[k] == ("irrelevant", None) for k in fleet.irrelevant)
    # Distinct stories are never merged: every item other than a duplicate's is its own brief.
    dup_items = {k for pair in fleet.simultaneous + fleet.staggered for k in pair}
    assert all(items[k][0] == "briefed" for k in relevant - dup_items)
    # An outlet that reports a story after another worker briefed it joins that brief (the
    # story match goes through the shared database, not one process's memory).
    staggered = [(a, b) for a, b in fleet.staggered if b in relevant]
    for a, b in staggered:
        assert items[a][0] == "briefed" and items[b] == ("merged", items[a][1]), (a, b)
    # Both halves of a story arriving at two workers in the same instant are one brief too: the
    # workers claim the story's keys in the database before either files it as new.
    split = sum(1 for a, b in fleet.simultaneous if items[a][1] != items[b][1])
    assert split == 0, f"{split} simultaneous pairs became two briefs"
    assert len(briefs) == len(relevant) - len(fleet.simultaneous) - len(staggered)
    assert {items[k][1] for k in relevant if items[k][0] == "briefed"} == briefs
    rows = obs.store.outbox_rows()
    assert sorted(r.ref_id for r in rows) == sorted(briefs)  # one delivery per brief and target
    assert {(r.status, r.attempts) for r in rows} == {("sent", 1)}
    lines = jsonl_ids(out)
    assert len(lines) == len(set(lines)) == len(briefs), "a brief was delivered twice or not at all"
    assert set(lines) == briefs
    return len(briefs), split


# About 75 s here: round 2 waits for the 30 s poll interval, the takeover for the next one. The
# waits below have their own deadlines (with diagnostics); this only stops pytest-timeout's 120 s
# default from cutting a slow CI machine short.
@pytest.mark.timeout(300)
def test_three_workers_share_200_feeds_and_survive_a_killed_worker(pg_url, tmp_path):
    fleet = build_fleet()
    farm = FeedFarm(fleet)
    farm.server.start()
    config = tmp_path / "feeds.yaml"
    config.write_text(yaml.safe_dump({
        "languages": ["en", "zh"], "topics": TOPICS,
        "fetch": {"concurrency": 64, "per_host": 64, "timeout": "20s"},
        "feeds": [{"name": feed_name(f), "url": farm.url(f), "every": "30s"} for f in range(FEEDS)],
        # Every brief to one file at once: the hourly cap would hold most of them back. Briefs only: a
        # staggered outlet's follow-up (tests/test_follow_ups.py) would be a line of its own.
        "routes": [{"name": "all", "to": ["jsonl:out/briefs.jsonl"], "max_posts_per_hour": 100_000,
                    "follow_ups": "off"}],
    }, allow_unicode=True), encoding="utf-8")
    out = tmp_path / "out" / "briefs.jsonl"
    obs = Observer(pg_url)
    # Start the workers together: hold the schema-migration lock until all three wait on it, as
    # if they were started at once on three hosts (otherwise the first to finish importing claims
    # every feed before the others exist).
    gate = ExitStack()
    gate.enter_context(migration_lock(obs.store.engine))
    workers = [start_worker(i, tmp_path, pg_url, config) for i in range(3)]

    def diagnostics() -> str:
        parts = []
        for i, w in enumerate(workers):
            tail = w.log.read_text(errors="replace").splitlines()[-15:] if w.log.exists() else []
            parts.append(f"--- worker {i} (pid {w.proc.pid}, exit {w.proc.poll()}):\n" + "\n".join(tail))
        try:
            items = obs.items()
            wanted = fleet.relevant1 | (fleet.relevant2 if farm.round == 2 else set())
            missing = [k for k in wanted if items.get(k, ("",))[0] not in ("briefed", "merged")]
            outbox = Counter((r.status, r.attempts) for r in obs.store.outbox_rows())
            parts.append(f"items recorded: {len(items)}, relevant not briefed: {len(missing)} {missing[:3]}, "
                         f"briefs: {len(obs.brief_ids())}, outbox (status, attempts): {dict(outbox)}")
        except Exception as exc:  # the database itself may be the problem
            parts.append(f"database unreadable: {exc}")
        return "\n".join(parts)

    try:
        # ---- round 1: 3 workers, 200 feeds, no coordinator (they even migrate the empty database at once).
        wait_for("all workers waiting to migrate", lambda: obs.waiting_on_locks() == len(workers), 60, diagnostics)
        gate.close()
        wait_for("the workers to create the schema", lambda: current_revision(obs.store.engine) == head_revision(), 60,
                 diagnostics)
        wait_for("all round-1 items briefed and delivered", lambda: obs.done(fleet.relevant1), 90, diagnostics)
        assert all(w.proc.poll() is None for w in workers), diagnostics()
        briefs1, split1 = check_exactly_once(obs, fleet, fleet.relevant1, out)
        # Each feed was parsed once (its document then stays byte-identical), by whichever worker
        # claimed it; across the workers every brief was sent exactly once.
        polls = [w.metric("briefbot_polls_total", outcome="ok") for w in workers]
        sent = [w.metric("briefbot_deliveries_total", target="jsonl", outcome="sent") for w in workers]
        assert sum(polls) == FEEDS, polls
        assert sum(sent) == briefs1, (sent, briefs1)

        # ---- round 2: a new story in every feed; feeds answer only once a worker has been killed
        # while it holds feed leases (its fetches still waiting for their replies).
        farm.start_round(2)
        holders: dict[str, Worker] = {}

        def someone_holds_leases() -> bool:
            holders.update({w.worker_id: w for w in workers if obs.leased_by(w.worker_id)})
            return bool(holders)

        wait_for("a worker to lease feeds in round 2", someone_holds_leases, 60, diagnostics)
        victim = next(iter(holders.values()))
        survivors = [w for w in workers if w is not victim]
        victim.proc.send_signal(signal.SIGKILL)
        victim.proc.wait(timeout=10)
        held = obs.leased_by(victim.worker_id)
        assert held, "the victim's feed leases vanished with it"
        fetched_before_kill = {name: farm.fetches[name] for name in held}
        farm.release()
        relevant = fleet.relevant1 | fleet.relevant2
        wait_for("round-2 items briefed and delivered by the survivors", lambda: obs.done(relevant), 100,
                 diagnostics)
        assert all(w.proc.poll() is None for w in survivors), diagnostics()
        briefs, split = check_exactly_once(obs, fleet, relevant, out)
        assert briefs == briefs1 + len(fleet.relevant2) - len(fleet.staggered) and split == split1
        # The dead worker's feeds were taken over once its leases expired: fetched again after the kill.
        items = obs.items()
        for name in held:
            f = int(name.rsplit("-", 1)[-1])
            assert items[(name, fleet.round2[f][0].guid)][0] == "briefed"
            assert farm.fetches[name] > fetched_before_kill[name], name
        assert not obs.leased_by(victim.worker_id)
        # Each feed's new document was parsed once, by one survivor: no feed was polled by two
        # workers at once (a later poll of an unchanged document is not an "ok" poll). The victim
        # parsed nothing in round 2: its fetches were still held when it died.
        polls2 = [w.metric("briefbot_polls_total", outcome="ok") for w in survivors]
        assert sum(polls2) - sum(p for w, p in zip(workers, polls) if w is not victim) == FEEDS, (polls, polls2)
    finally:
        for w in workers:
            if w.proc.poll() is None:
                w.proc.send_signal(signal.SIGTERM)
        for w in workers:
            try:
                w.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                w.proc.kill()
                w.proc.wait()
        farm.release()
        farm.server.stop()
        gate.close()
        obs.store.close()
    # The survivors shut down cleanly on SIGTERM.
    assert [w.proc.returncode for w in survivors] == [0, 0], diagnostics()
