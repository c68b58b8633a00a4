"""One poll of one feed: claim → fetch → parse → decide the entries → write.

Claim the feed (a lease, so one worker polls it at a time), fetch it (conditional GET), parse it and
work out each entry's facts (identity, topics, numbers: in the parser worker), keep the new
relevant entries, join each to an existing story or make a new brief (LLM or extractive), and
store items, briefs, joins, outbox rows and the feed's new state in one transaction. The outbox
dispatcher delivers them.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from bot import metrics
from bot.analyse.numbers import as_figures
from bot.analyse.stories import make_signature
from bot.analyse.text import defang_links
from bot.analyse.topics import TopicMatcher
from bot.config import FeedConfig, Settings, format_duration
from bot.ingest.fetch import Fetcher, FetchResult
from bot.ingest.parse import FeedParseError, ParsedEntry
from bot.models import Source, utcnow
from bot.pipeline.batching import FeedClaimQueue, PollWriteQueue
from bot.pipeline.briefing import Briefer
from bot.pipeline.facts import EntryFacts
from bot.pipeline.flood import FloodGuard
from bot.pipeline.parser_pool import FeedParser
from bot.pipeline.story_desk import StoryDesk
from bot.store import FeedState, FeedUpdate, ItemRecord, NewBrief, PollWrites, Store, StoryJoin
from bot.summarise import Article

if TYPE_CHECKING:  # the OpenAI client is loaded only by a bot that has an LLM configured
    from bot.summarise.llm import LLMSummariser

__all__ = ["FEED_LEASE", "PollReport", "Poller"]

log = logging.getLogger("briefbot.pipeline")

# A feed lease outlives any sane poll; a worker that dies mid-poll loses it after this.
FEED_LEASE = timedelta(minutes=5)
# Published times further in the future than this are publisher clock errors: use fetch time.
FUTURE_TOLERANCE = timedelta(minutes=30)
# Without an LLM a feed's entries are decided without a pause; a long document still yields
# to other feeds' requests every this many on-topic entries.
YIELD_EVERY = 32
# Polls between fetch and parsed result, beyond the fetcher's concurrency: enough to keep the parser
# busy while every fetch slot is in use. Starting all feeds' fetches at once let hundreds of fetched
# bodies wait for the parser (a cold poll of 1,000 feeds peaked ~12 MiB higher).
PARSE_SLOTS = 16


@dataclass
class PollReport:
    feed: str
    outcome: str  # ok | not-modified | unchanged | error | skipped | disabled
    new_briefs: list[str] = field(default_factory=list)
    merged: int = 0
    irrelevant: int = 0
    old: int = 0
    held: int = 0  # new on-topic entries the flood guard stored without briefs
    error: str | None = None
    flood: FloodGuard | None = field(default=None, repr=False, compare=False)


class Poller:
    """Runs polls for one process."""

    def __init__(self, *, settings: Settings, store: Store, fetcher: Fetcher, parser: FeedParser,
                 llm: LLMSummariser | None, worker_id: str, lease: timedelta = FEED_LEASE):
        self.store = store
        self.fetcher = fetcher
        self.parser = parser
        self.llm = llm
        self.worker_id = worker_id
        self.lease = lease
        self.parser.start()
        self.stories = StoryDesk(store, worker_id)
        self._writes = PollWriteQueue(store, self.stories)
        self._claims = FeedClaimQueue(store)
        self._in_flight: tuple[asyncio.AbstractEventLoop, asyncio.Semaphore] | None = None
        self._use_settings(settings)

    def _use_settings(self, settings: Settings) -> None:
        self.settings = settings
        self.matcher = TopicMatcher(settings)
        self.briefer = Briefer(settings, self.matcher, self.llm, self.fetcher)

    def reload(self, settings: Settings) -> None:
        self._use_settings(settings)
        for feed in settings.feeds:
            self.store.ensure_feed(feed.name, feed.url)

    def _fetch_parse_gate(self) -> asyncio.Semaphore:
        """The cap on polls between fetch and parsed result; one per event loop (a semaphore belongs
        to the loop it first waits on)."""
        loop = asyncio.get_running_loop()
        if self._in_flight is None or self._in_flight[0] is not loop:
            self._in_flight = (loop, asyncio.Semaphore(self.settings.fetch.concurrency + PARSE_SLOTS))
        return self._in_flight[1]

    # ----------------------------------------------------------------- one poll
    async def poll_all(self, force: bool = False) -> list[PollReport]:
        feeds = self.settings.polled_feeds
        return list(await asyncio.gather(*(self.poll_feed(f, force=force) for f in feeds)))

    async def poll_feed(self, feed: FeedConfig, force: bool = False) -> PollReport:
        # The claim returns the feed's state, and the UPDATE recording the poll's outcome also ends the
        # lease: a 304 costs two statements, both shared with other polls (claims asked for together,
        # group commit). The finally below only releases a poll that never got as far as recording an
        # outcome (an exception on the way, or cancellation).
        state = await self._claims.claim(feed.name, self.worker_id, self.lease, force)
        if state is None:
            state = self.store.feed_state(feed.name)
            return PollReport(feed.name, "disabled" if state and state.disabled_reason else "skipped")
        recorded = False
        try:
            report = await self._poll_claimed(feed, state)
            recorded = True
            return report
        except Exception as exc:  # one broken feed must never stop the others
            log.exception("poll of feed %s failed unexpectedly", feed.name, extra={"feed": feed.name})
            self._record_failure(feed, "internal", f"internal error: {type(exc).__name__}: {exc}")
            recorded = True
            return PollReport(feed.name, "error", error=str(exc))
        finally:
            if not recorded:
                self.store.release_feed(feed.name, self.worker_id)

    async def _poll_claimed(self, feed: FeedConfig, state: FeedState) -> PollReport:
        """Fetch, parse, decide and write a claimed feed; every outcome is recorded with an UPDATE that
        also ends this worker's lease."""
        async with self._fetch_parse_gate():
            fetched = await self._fetch_and_parse(feed, state)
        if isinstance(fetched, PollReport):
            return fetched
        parsed, facts, done, now = fetched
        report = await self._process_entries(feed, parsed.entries, facts, state, now, done)
        if parsed.problem:
            log.warning("feed %s parsed with problems: %s", feed.name, parsed.problem, extra={"feed": feed.name})
        metrics.POLLS.labels("ok").inc()
        return report

    async def _fetch_and_parse(self, feed: FeedConfig, state: FeedState):
        """The parsed feed, its entries' facts, the feed's new state and the fetch time; or the report
        of a poll that ends here (error, not modified, unchanged). The body is dropped on return."""
        now = utcnow()
        result = await self.fetcher.fetch(feed.url, etag=state.etag, last_modified=state.last_modified)
        if result.status == "error":
            self._record_failure(feed, result.error_kind or "error", result.error or "fetch failed",
                                 result.retry_after, gone=result.gone, state=state)
            return PollReport(feed.name, "error", error=result.error)
        fetched = self._fetched_fields(feed, state, result, now)
        metrics.LAST_SUCCESSFUL_POLL.set(now.timestamp())
        body = result.body or b""
        body_hash = hashlib.sha256(body).hexdigest()
        if result.status == "not-modified" or body_hash == state.body_hash:
            # Servers without validators still cost no parsing when nothing changed.
            outcome = "not-modified" if result.status == "not-modified" else "unchanged"
            return await self._record_unchanged(feed, outcome, fetched)
        try:
            parsed, facts = await self.parser.parse(body, result.content_type, result.final_url or feed.url,
                                                    self.matcher)
        except FeedParseError as exc:
            self._record_failure(feed, "parse", str(exc), state=state)
            return PollReport(feed.name, "error", error=str(exc))
        # The feed's new state is written with the entries' decisions, in the same transaction.
        done = FeedUpdate(feed.name, dict(last_status="ok", body_hash=body_hash, first_polled=True,
                                          last_problem=parsed.problem, **fetched), release_owner=self.worker_id)
        return parsed, facts, done, now

    @staticmethod
    def _fetched_fields(feed: FeedConfig, state: FeedState, result: FetchResult, now: datetime) -> dict:
        """The feed's new state after a successful fetch, whatever the body turns out to hold."""
        return dict(last_fetch_at=now, last_success_at=now, failures=0, last_error=None,
                    next_poll_at=now + feed.every, etag=result.etag or state.etag,
                    last_modified=result.last_modified or state.last_modified)

    async def _record_unchanged(self, feed: FeedConfig, outcome: str, fetched: dict) -> PollReport:
        await self._writes.write(PollWrites(feed_updates=[
            FeedUpdate(feed.name, dict(last_status=outcome, **fetched), release_owner=self.worker_id)]))
        metrics.POLLS.labels(outcome).inc()
        return PollReport(feed.name, outcome)

    def _record_failure(self, feed: FeedConfig, kind: str, error: str, retry_after: float | None = None,
                        gone: bool = False, state: FeedState | None = None) -> None:
        """Count a failed poll, back off, and end this worker's lease in the same UPDATE. `state`: the
        feed's state as claimed (read again when not given)."""
        if state is None:
            state = self.store.feed_state(feed.name)
        failures = (state.failures if state else 0) + 1
        now = utcnow()
        max_backoff = self.settings.fetch.max_backoff
        backoff = min(feed.every * (2 ** min(failures - 1, 16)), max_backoff)
        if retry_after:
            backoff = max(backoff, timedelta(seconds=min(retry_after, max_backoff.total_seconds())))
        # Jitter keeps many failing feeds from retrying in lockstep.
        backoff = backoff * (1 + random.uniform(0, 0.1))
        values = dict(last_fetch_at=now, failures=failures, last_error=error[:500], last_status=f"error:{kind}",
                      next_poll_at=now + backoff)
        if gone:
            values["disabled_reason"] = f"feed gone (HTTP 410) at {now:%Y-%m-%d %H:%M} UTC; fix the URL in feeds.yaml"
        self.store.update_feed(feed.name, release_owner=self.worker_id, **values)
        metrics.POLLS.labels("error").inc()
        metrics.FETCH_ERRORS.labels(kind).inc()
        log.warning("feed %s: %s (failure %d, next try in %s)", feed.name, error, failures,
                    str(backoff).split(".")[0], extra={"feed": feed.name, "error_kind": kind})

    # ----------------------------------------------------------------- entries
    async def _process_entries(self, feed: FeedConfig, entries: list[ParsedEntry], facts: list[EntryFacts],
                               state: FeedState, now: datetime, feed_update: FeedUpdate) -> PollReport:
        """Decide every new entry, then write the decisions with the feed's new state (`feed_update`,
        which also ends the lease) in one transaction. `state`: the feed's row as claimed.

        Decisions are handed to the write queue before every await (and so before any other feed
        decides): another feed can only ever find, join or wait on stories that are stored or
        queued before its own writes. Without an LLM there is no await between entries, so a feed's
        decisions are one write — except that a long document yields (after a write) every
        YIELD_EVERY on-topic entries."""
        report = PollReport(feed.name, "ok", flood=FloodGuard.for_feed(self.settings, feed))
        writes = PollWrites()
        try:
            await self._decide_entries(feed, entries, facts, state.items_total > 0, now, writes, report)
            report.held = report.flood.queue_notice(self.settings, writes)
            writes.feed_updates.append(feed_update)
            await self._write(writes, report)
        finally:
            # Stories decided but never handed over (an exception on the way) leave the index, or
            # later entries would join a story that does not exist. Their entries stay unrecorded and
            # are read again next poll (the feed's new body hash is stored by the last write only).
            for new in writes.new_briefs:
                self.stories.discard(new.brief.id)
        for outcome in ("old", "irrelevant"):
            metrics.ITEMS.labels(outcome).inc(getattr(report, outcome))
        if not state.first_polled and report.old:
            log.info("feed %s: first poll, %d entries older than %s recorded as seen", feed.name, report.old,
                     format_duration(feed.max_age or self.settings.max_age), extra={"feed": feed.name})
        return report

    async def _decide_entries(self, feed: FeedConfig, entries: list[ParsedEntry], facts: list[EntryFacts],
                              has_items: bool, now: datetime, writes: PollWrites, report: PollReport) -> None:
        """`has_items`: the feed has recorded entries (its `items_total` as claimed), so some of
        these may be known."""
        max_age = feed.max_age or self.settings.max_age
        allowed_topics = self.settings.feed_topics(feed)
        known = self._known_keys(feed, facts) if has_items else set()
        seen_in_this_body: set[str] = set()
        on_topic = 0
        for entry, fact in zip(entries, facts):
            ident = fact.ident
            if ident.item_key in seen_in_this_body:
                continue  # duplicate GUIDs inside one feed document
            seen_in_this_body.add(ident.item_key)
            if known & {ident.item_key, ident.link_key, ident.content_key} - {None}:
                continue  # seen before, possibly under another GUID (same link or same content)
            published = entry.published
            if published and published > now + FUTURE_TOLERANCE:
                published = now
            record = ItemRecord(feed=feed.name, item_key=ident.item_key, guid=entry.guid, link=entry.link,
                                link_key=ident.link_key, content_key=ident.content_key, title=entry.title,
                                published=published, status="", topics=[])
            topics = [t for t in fact.topics if t in allowed_topics]
            if published and now - published > max_age:
                self._pass_over(record, "old", writes, report)
            elif not topics:
                self._pass_over(record, "irrelevant", writes, report)
            else:
                record.topics = topics
                on_topic += 1
                if on_topic % YIELD_EVERY == 0:
                    # A long first poll (~0.3 ms per on-topic entry) still lets other feeds' requests go out.
                    await self._write(writes, report)
                article = Article(feed=feed.name, url=entry.link or feed.url, title=entry.title, text=entry.text,
                                  lang=fact.lang, topics=topics, published=published or now)
                await self._brief_item(article, record, fact, writes, report)

    def _known_keys(self, feed: FeedConfig, facts: list[EntryFacts]) -> set[str]:
        """The keys of these entries that the feed has recorded: one query for the whole document.

        Should another worker record the same entries meanwhile (our lease expired), the unique key
        refuses our copies at the write."""
        return self.store.known_item_keys(feed.name, [f.ident for f in facts])

    @staticmethod
    def _pass_over(record: ItemRecord, status: str, writes: PollWrites, report: PollReport) -> None:
        """Record an entry as seen without briefing it (`old` or `irrelevant`)."""
        record.status = status
        writes.quiet.append(record)
        setattr(report, status, getattr(report, status) + 1)

    async def _brief_item(self, article: Article, record: ItemRecord, fact: EntryFacts, writes: PollWrites,
                          report: PollReport) -> None:
        """Join the item to an existing story or make a new brief (decisions go to `writes`)."""
        figures = as_figures(fact.figures)
        sig = make_signature(article.title, article.text, article.lang, article.topics, fact.story_numbers,
                             article.published, words=fact.words, feed=article.feed)
        source = Source(url=article.url, feed=article.feed, title=defang_links(article.title),
                        published=article.published)

        async def write_so_far() -> None:
            await self._write(writes, report)

        story_id = await self.stories.existing_story(sig, write_so_far)
        if story_id is not None:
            self.stories.joined(story_id, article.feed)
            record.status = "merged"
            # Only a story begun in another language can lack text in this one: the store fills it
            # from the item's own text while the story has just a stand-in there.
            text = self.briefer.source_text(article, figures) \
                if self.stories.language_of(story_id) != article.lang else None
            writes.joins.append(StoryJoin(story_id, record, source, self.briefer.labelled(figures),
                                          list(article.topics), text))
            return
        if report.flood and report.flood.full(len(report.new_briefs) + len(writes.new_briefs)):
            report.flood.hold(record)  # a new story past this poll's cap: stored and summarised, not briefed
            return
        with self.stories.making(sig) as story:
            brief = await self.briefer.new_brief(article, record.item_key, source, figures, write_so_far)
            if brief is None:
                self._pass_over(record, "irrelevant", writes, report)
                metrics.ITEMS.labels("llm-irrelevant").inc()
                log.info("LLM judged item not relevant: %s (%s)", article.title, article.feed,
                         extra={"feed": article.feed})
                return
            record.status = "briefed"
            targets = [str(t) for t in self.settings.targets_for(article.topics)]
            writes.new_briefs.append(NewBrief(brief, record, targets, sig.to_dict(), article.lang))
            # In the index at once: this feed's later entries may join it. Nothing else runs before
            # the write, and a story that is not written leaves the index again.
            self.stories.add(brief.id, sig)
            story.brief_id = brief.id

    async def _write(self, writes: PollWrites, report: PollReport) -> None:
        """Store the decisions so far (they leave `writes`) and account for what was stored."""
        if not writes:
            return
        batch = writes.take()
        try:
            written = await self._writes.write(batch)
        except BaseException:
            for new in batch.new_briefs:  # not stored: see _process_entries
                self.stories.discard(new.brief.id)
            raise
        for new in written.dropped_briefs:
            self.stories.discard(new.brief.id)  # another worker recorded its entry first
        for join in written.joins_to_gone_stories:
            log.info("item not recorded, story %s is gone (read again next poll): %s (%s)", join.brief_id,
                     join.source.title, join.source.feed, extra={"feed": join.source.feed, "brief_id": join.brief_id})
        for new in written.briefs:
            brief = new.brief
            report.new_briefs.append(brief.id)
            metrics.BRIEFS.labels(brief.mode).inc()
            metrics.ITEMS.labels("briefed").inc()
            source = brief.sources[0]
            log.info("new %s brief %s: %s (%s) → %d target(s)", brief.mode, brief.id, source.title, source.feed,
                     len(new.targets), extra={"feed": source.feed, "brief_id": brief.id})
        for join in written.joins:
            report.merged += 1
            metrics.STORY_MERGES.inc()
            metrics.ITEMS.labels("merged").inc()
            log.info("item joined story %s: %s (%s)", join.brief_id, join.source.title, join.source.feed,
                     extra={"feed": join.source.feed, "brief_id": join.brief_id})
