"""Feeds → relevant items → stories → briefs → outbox.

A poll of one feed: claim it (lease), fetch (conditional GET), parse and analyse the entries
(identity, topics, numbers: in the parser worker), keep the new relevant ones, join each to an
existing story or summarise it (LLM or extractive), and store items, briefs, joins, outbox rows
and the feed's new state in one transaction. The outbox dispatcher delivers them.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot import metrics
from bot.app.container import App
from bot.config import Env, FeedConfig, Settings, format_duration
from bot.ingest.fetch import Fetcher, FetchResult
from bot.ingest.parse import FeedParseError, ParsedEntry
from bot.pipeline.parser_pool import FeedParser, default_parse_workers
from bot.pipeline.facts import EntryFacts, entry_facts
from bot.analyse.numbers.figures import as_figures
from bot.models import Brief, Figure, Source, new_brief_id, utcnow
from bot.analyse.stories import STORY_WINDOW, StoryIndex, StorySignature, find_same_story, make_signature
from bot.store import FeedState, FeedUpdate, ItemRecord, NewBrief, PollWrites, Store, StoryJoin, WrittenPoll
from bot.summarise import Article
from bot.summarise.extractive import extractive_content
from bot.analyse.text import defang_links
from bot.analyse.topics import TopicMatcher

log = logging.getLogger("briefbot.pipeline")

# A feed lease outlives any sane poll; a worker that dies mid-poll loses it after this.
FEED_LEASE = timedelta(minutes=5)
# Published times further in the future than this are publisher clock errors: use fetch time.
FUTURE_SLACK = timedelta(minutes=30)
# How often other workers' new stories are read into this process's story index.
STORY_REFRESH = timedelta(seconds=5)
# Without an LLM a feed's entries are decided without a pause; a long document still yields
# to other feeds' requests every this many on-topic entries.
YIELD_EVERY = 32


@dataclass
class PollReport:
    feed: str
    outcome: str  # ok | not-modified | unchanged | error | skipped | disabled
    new_briefs: list[str] = field(default_factory=list)
    merged: int = 0
    irrelevant: int = 0
    old: int = 0
    error: str | None = None


class PollWriteQueue:
    """Group commit: the writes polls hand over within a short window are written together, in one
    transaction (a commit costs about as much CPU as the rows it writes, and on a cold poll feeds
    finish in a crowd: this took a sixth off the event loop's CPU per feed).

    One poll's write failing never fails another's: on an error the polls are written one by one.
    Writes are flushed in the order they came, so an entry joining a story decided by another poll
    moments before is written after that story (in the same transaction, or a later one)."""

    # How long the first write of a group waits for company: short next to a poll's own network
    # wait, long enough that a busy loop gathers several feeds' writes.
    WINDOW = 0.02
    # A group is written at once when it is this large (bounds a transaction's size).
    MAX_GROUP = 64

    def __init__(self, store: Store):
        self.store = store
        self._queue: list[tuple[PollWrites, asyncio.Future]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def write(self, writes: PollWrites) -> WrittenPoll:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            # Writes still queued on another loop belong to polls that ended with it (never stored).
            self._queue, self._timer, self._loop = [], None, loop
        written = loop.create_future()
        self._queue.append((writes, written))
        if len(self._queue) >= self.MAX_GROUP:
            self._flush()
        elif self._timer is None:
            self._timer = loop.call_later(self.WINDOW, self._flush)
        return await written

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        # A poll cancelled meanwhile (shutting down) no longer wants its writes: nothing of it is stored.
        queue = [(writes, written) for writes, written in self._queue if not written.done()]
        self._queue = []
        if not queue:
            return
        try:
            results = self.store.write_polls([writes for writes, _ in queue])
        except Exception as exc:
            if len(queue) == 1:
                queue[0][1].set_exception(exc)
                return
            for writes, written in queue:
                try:
                    written.set_result(self.store.write_poll(writes))
                except Exception as poll_exc:
                    written.set_exception(poll_exc)
            return
        for (_, written), result in zip(queue, results):
            written.set_result(result)


class FeedClaimQueue:
    """The claims polls ask for in one turn of the event loop go to the database in one statement:
    `poll_all` starts every feed's poll at once, and a claim is a transaction of its own."""

    def __init__(self, store: Store):
        self.store = store
        self._queue: list[tuple[str, str, timedelta, bool, asyncio.Future]] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    async def claim(self, name: str, owner: str, lease: timedelta, force: bool) -> FeedState | None:
        """`Store.claim_feed_state(name, owner, lease, force=force)`."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._queue, self._loop = [], loop  # claims still queued on another loop went with it
        claimed = loop.create_future()
        self._queue.append((name, owner, lease, force, claimed))
        if len(self._queue) == 1:
            loop.call_soon(self._flush)
        try:
            return await claimed
        except asyncio.CancelledError:
            if claimed.done() and not claimed.cancelled() and claimed.exception() is None \
                    and claimed.result() is not None:
                self.store.release_feed(name, owner)  # claimed for a poll that will not run
            raise

    def _flush(self) -> None:
        queue = [entry for entry in self._queue if not entry[-1].done()]  # (a cancelled poll claims nothing)
        self._queue = []
        groups: dict[tuple[str, timedelta, bool], list[tuple[str, asyncio.Future]]] = {}
        for name, owner, lease, force, claimed in queue:
            groups.setdefault((owner, lease, force), []).append((name, claimed))
        for (owner, lease, force), claims in groups.items():
            try:
                states = self.store.claim_feed_states([name for name, _ in claims], owner, lease, force=force)
            except Exception as exc:
                for _, claimed in claims:
                    claimed.set_exception(exc)
                continue
            for name, claimed in claims:
                claimed.set_result(states.get(name))


class Poller:
    """Runs polls for one process. Story creation is coordinated in memory so that two outlets
    polled at the same moment still make one story (and one LLM call)."""

    def __init__(self, app: App):
        self.app = app
        self.app.parser.start()
        self.matcher = TopicMatcher(app.settings)
        self._story_lock = asyncio.Lock()
        # Stories being summarised right now: (signature, future resolving to the brief id or None).
        self._pending: list[tuple[StorySignature, asyncio.Future]] = []
        # Signatures never change once a story exists, so they are read from the store once.
        self._stories = StoryIndex()
        self._stories_read_at: datetime | None = None
        self._writes = PollWriteQueue(app.store)
        self._claims = FeedClaimQueue(app.store)

    def _recent_stories(self, now: datetime) -> StoryIndex:
        """The story index, topped up with stories other workers (or earlier runs) created.

        This process's own stories enter the index as they are made; other workers' stories are
        read every few seconds (a same-second race between workers is a documented residual)."""
        if self._stories_read_at is not None and now - self._stories_read_at < STORY_REFRESH:
            return self._stories
        # Overlap the last read generously: other workers' clocks and commits lag a little.
        since = now - STORY_WINDOW - STORY_WINDOW / 2 if self._stories_read_at is None \
            else self._stories_read_at - timedelta(minutes=10)
        for story_id, signature, _lang in self.store.story_candidates(since, limit=None):
            if story_id not in self._stories:
                self._stories.add(story_id, StorySignature.from_dict(signature))
        self._stories_read_at = now
        self._stories.evict_published_before(now - 2 * STORY_WINDOW)
        return self._stories

    @property
    def settings(self) -> Settings:
        return self.app.settings

    @property
    def store(self) -> Store:
        return self.app.store

    def reload(self, settings: Settings) -> None:
        self.app.settings = settings
        self.matcher = TopicMatcher(settings)
        for feed in settings.feeds:
            self.store.ensure_feed(feed.name, feed.url)

    # ----------------------------------------------------------------- polling
    async def poll_all(self, force: bool = False) -> list[PollReport]:
        feeds = [f for f in self.settings.feeds if f.enabled]
        return list(await asyncio.gather(*(self.poll_feed(f, force=force) for f in feeds)))

    async def poll_feed(self, feed: FeedConfig, force: bool = False) -> PollReport:
        owner = self.app.worker_id
        lease = timedelta(seconds=self.app.env.lease_seconds) if self.app.env.lease_seconds else FEED_LEASE
        # The claim returns the feed's state, and the UPDATE recording the poll's outcome also ends the
        # lease: a 304 costs two statements, both shared with other polls (claims asked for together,
        # group commit). The finally below only releases a poll that never got as far as recording an
        # outcome (an exception on the way, or cancellation).
        state = await self._claims.claim(feed.name, owner, lease, force)
        if state is None:
            state = self.store.feed_state(feed.name)
            outcome = "disabled" if state and state.disabled_reason else "skipped"
            return PollReport(feed.name, outcome)
        recorded = False
        try:
            report = await self._poll_claimed(feed, state, owner)
            recorded = True
            return report
        except Exception as exc:  # one broken feed must never stop the others
            log.exception("poll of feed %s failed unexpectedly", feed.name, extra={"feed": feed.name})
            self._record_failure(feed, "internal", f"internal error: {type(exc).__name__}: {exc}", None,
                                 release_owner=owner)
            recorded = True
            return PollReport(feed.name, "error", error=str(exc))
        finally:
            if not recorded:
                self.store.release_feed(feed.name, owner)

    async def _poll_claimed(self, feed: FeedConfig, state: FeedState, owner: str) -> PollReport:
        """Poll a claimed feed; every outcome is recorded with an UPDATE that also ends `owner`'s lease."""
        now = utcnow()
        result: FetchResult = await self.app.fetcher.fetch(feed.url, etag=state.etag,
                                                           last_modified=state.last_modified)
        if result.status == "error":
            self._record_failure(feed, result.error_kind or "error", result.error or "fetch failed",
                                 result.retry_after, gone=result.gone, state=state, release_owner=owner)
            return PollReport(feed.name, "error", error=result.error)
        next_poll = now + feed.every
        common = dict(last_fetch_at=now, last_success_at=now, failures=0, last_error=None, next_poll_at=next_poll,
                      etag=result.etag or state.etag, last_modified=result.last_modified or state.last_modified)
        metrics.LAST_SUCCESSFUL_POLL.set(now.timestamp())
        if result.status == "not-modified":
            await self._writes.write(PollWrites(feed_updates=[
                FeedUpdate(feed.name, dict(last_status="not-modified", **common), release_owner=owner)]))
            metrics.POLLS.labels("not-modified").inc()
            return PollReport(feed.name, "not-modified")
        body = result.body or b""
        body_hash = hashlib.sha256(body).hexdigest()
        if body_hash == state.body_hash:
            # Servers without validators still cost no parsing when nothing changed.
            await self._writes.write(PollWrites(feed_updates=[
                FeedUpdate(feed.name, dict(last_status="unchanged", **common), release_owner=owner)]))
            metrics.POLLS.labels("unchanged").inc()
            return PollReport(feed.name, "unchanged")
        try:
            parsed = await self.app.parser.parse(body, result.content_type, result.final_url or feed.url,
                                                 self.matcher)
        except FeedParseError as exc:
            self._record_failure(feed, "parse", str(exc), None, state=state, release_owner=owner)
            return PollReport(feed.name, "error", error=str(exc))
        # The feed's new state is written with the entries' decisions, in the same transaction.
        done = FeedUpdate(feed.name, dict(last_status="ok", body_hash=body_hash, first_polled=True,
                                          last_problem=parsed.problem, **common), release_owner=owner)
        report = await self._process_entries(feed, parsed.entries, state, now, done)
        if parsed.problem:
            log.warning("feed %s parsed with problems: %s", feed.name, parsed.problem, extra={"feed": feed.name})
        metrics.POLLS.labels("ok").inc()
        return report

    def _record_failure(self, feed: FeedConfig, kind: str, error: str, retry_after: float | None,
                        gone: bool = False, state: FeedState | None = None,
                        release_owner: str | None = None) -> None:
        """Count a failed poll and back off. `state`: the feed's state as claimed (read again when not
        given); `release_owner`: end that owner's lease in the same UPDATE."""
        if state is None:
            state = self.store.feed_state(feed.name)
        failures = (state.failures if state else 0) + 1
        now = utcnow()
        backoff = min(feed.every * (2 ** min(failures - 1, 16)), self.settings.fetch.max_backoff)
        if retry_after:
            backoff = max(backoff, timedelta(seconds=min(retry_after, self.settings.fetch.max_backoff.total_seconds())))
        # Jitter keeps many failing feeds from retrying in lockstep.
        backoff = backoff * (1 + random.uniform(0, 0.1))
        values = dict(last_fetch_at=now, failures=failures, last_error=error[:500], last_status=f"error:{kind}",
                      next_poll_at=now + backoff)
        if gone:
            values["disabled_reason"] = f"feed gone (HTTP 410) at {now:%Y-%m-%d %H:%M} UTC; fix the URL in feeds.yaml"
        self.store.update_feed(feed.name, release_owner=release_owner, **values)
        metrics.POLLS.labels("error").inc()
        metrics.FETCH_ERRORS.labels(kind).inc()
        log.warning("feed %s: %s (failure %d, next try in %s)", feed.name, error, failures,
                    str(backoff).split(".")[0], extra={"feed": feed.name, "error_kind": kind})

    # ----------------------------------------------------------------- entries
    async def _process_entries(self, feed: FeedConfig, entries: list[ParsedEntry], state: FeedState,
                               now: datetime, feed_update: FeedUpdate) -> PollReport:
        """Decide every new entry, then write the decisions with the feed's new state (`feed_update`,
        which also ends the lease) in one transaction. `state`: the feed's row as claimed.

        Decisions are handed to the write queue before every await (and so before any other feed
        decides): another feed can only ever find, join or wait on stories that are stored or
        queued before its own writes. Without an LLM there is no await between entries, so a feed's
        decisions are one write — except that a long document yields (after a write) every
        YIELD_EVERY on-topic entries."""
        report = PollReport(feed.name, "ok")
        writes = PollWrites()
        try:
            await self._decide_entries(feed, entries, state.items_total > 0, now, writes, report)
            writes.feed_updates.append(feed_update)
            await self._write(writes, report)
        finally:
            # Stories decided but never handed over (an exception on the way) leave the index, or
            # later entries would join a story that does not exist. Their entries stay unrecorded and
            # are read again next poll (the feed's new body hash is stored by the last write only).
            for new in writes.new_briefs:
                self._stories.discard(new.brief.id)
        for outcome in ("old", "irrelevant"):
            metrics.ITEMS.labels(outcome).inc(getattr(report, outcome))
        if not state.first_polled and report.old:
            log.info("feed %s: first poll, %d entries older than %s recorded as seen", feed.name, report.old,
                     format_duration(feed.max_age or self.settings.max_age), extra={"feed": feed.name})
        return report

    async def _decide_entries(self, feed: FeedConfig, entries: list[ParsedEntry], has_items: bool, now: datetime,
                              writes: PollWrites, report: PollReport) -> None:
        """`has_items`: the feed has recorded entries (its `items_total` as claimed), so some of
        these may be known."""
        max_age = feed.max_age or self.settings.max_age
        allowed_topics = self.settings.feed_topics(feed)
        seen_in_this_body: set[str] = set()
        # Worked out next to the parser (another core); computed here only if the parser did not.
        facts = [e.facts or entry_facts(e, self.matcher) for e in entries]
        # One query for the whole document instead of one per entry, and none on a feed's first
        # fruitful poll. items_total counts the feed's item rows (it grows in the transaction that
        # inserts them; nothing deletes either). Should another worker record the same entries
        # meanwhile (our lease expired), the unique key refuses our copies at the write.
        known = self.store.known_item_keys(feed.name, [f.ident for f in facts]) if has_items else set()
        on_topic = 0
        for entry, fact in zip(entries, facts):
            ident = fact.ident
            if ident.item_key in seen_in_this_body:
                continue  # duplicate GUIDs inside one feed document
            seen_in_this_body.add(ident.item_key)
            if known & {ident.item_key, ident.link_key, ident.content_key} - {None}:
                continue  # seen before, possibly under another GUID (same link or same content)
            published = entry.published
            if published and published > now + FUTURE_SLACK:
                published = now
            record = ItemRecord(feed=feed.name, item_key=ident.item_key, guid=entry.guid, link=entry.link,
                                link_key=ident.link_key, content_key=ident.content_key, title=entry.title,
                                published=published, status="", topics=[])
            if published and now - published > max_age:
                record.status = "old"
                writes.quiet.append(record)
                report.old += 1
                continue
            topics = [t for t in fact.topics if t in allowed_topics]
            if not topics:
                record.status = "irrelevant"
                writes.quiet.append(record)
                report.irrelevant += 1
                continue
            record.topics = topics
            on_topic += 1
            if on_topic % YIELD_EVERY == 0:
                # A long first poll (~0.3 ms per on-topic entry) still lets other feeds' requests go out.
                await self._write(writes, report)
            article = Article(feed=feed.name, url=entry.link or feed.url, title=entry.title, text=entry.text,
                              lang=fact.lang, topics=topics, published=published or now)
            await self._brief_item(article, record, fact, writes, report)

    async def _write(self, writes: PollWrites, report: PollReport) -> None:
        """Store the decisions so far (they leave `writes`) and account for what was stored."""
        if not writes:
            return
        batch = writes.take()
        try:
            written = await self._writes.write(batch)
        except BaseException:
            for new in batch.new_briefs:  # not stored: see _process_entries
                self._stories.discard(new.brief.id)
            raise
        for new in written.dropped_briefs:
            self._stories.discard(new.brief.id)  # another worker recorded its entry first
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

    async def _brief_item(self, article: Article, record: ItemRecord, fact: EntryFacts, writes: PollWrites,
                          report: PollReport) -> None:
        """Join the item to an existing story or make a new brief (decisions go to `writes`)."""
        # Worked out by the parser worker (bot.pipeline.facts) for an on-topic entry.
        figures = as_figures(fact.figures)
        sig = make_signature(article.title, article.text, article.lang, article.topics, fact.story_numbers,
                             article.published, words=fact.words)
        source = Source(url=article.url, feed=article.feed, title=defang_links(article.title),
                        published=article.published)
        while True:
            async with self._story_lock:
                match = self._recent_stories(utcnow()).find_same_story(sig)
                pending = None
                if match is None:
                    pending = next((fut for psig, fut in self._pending
                                    if find_same_story(sig, [("pending", psig)])), None)
                if match is None and pending is None:
                    future: asyncio.Future = asyncio.get_running_loop().create_future()
                    self._pending.append((sig, future))
                    break
            if match is None:
                # Another outlet's version of this story is being summarised: wait and join it.
                await self._write(writes, report)
                match = await asyncio.shield(pending)
                if match is None:
                    continue  # that attempt produced no brief; decide again
            writes.joins.append(self._join(match, article, record, source, figures))
            return
        brief_id = None
        try:
            brief_id = await self._new_brief(article, record, source, sig, figures, writes, report)
        finally:
            self._pending = [(s, f) for s, f in self._pending if f is not future]
            if not future.done():
                future.set_result(brief_id)

    def _join(self, brief_id: str, article: Article, record: ItemRecord, source: Source,
              figures: list[Figure]) -> StoryJoin:
        record.status = "merged"
        figures = [_fill_labels(fig, self.settings) for fig in figures]
        return StoryJoin(brief_id, record, source, figures, list(article.topics))

    async def _new_brief(self, article: Article, record: ItemRecord, source: Source, sig: StorySignature,
                         figures: list[Figure], writes: PollWrites, report: PollReport) -> str | None:
        """Decide a new story (extractive, or summarised by the LLM); its brief id, or None (LLM: off-topic)."""
        settings = self.settings
        mode = "extractive"
        title, summary, figures = extractive_content(article, settings, self.matcher.keyword_hits, figures=figures)
        if self.app.llm is not None:
            from bot.summarise.article import enrich_article

            await self._write(writes, report)  # the calls below yield to other feeds
            enriched = await enrich_article(article, self.app.fetcher, settings.llm.fetch_article_below_chars)
            llm_brief = await self.app.llm.summarise(enriched)
            if llm_brief is not None and not llm_brief.relevant:
                record.status = "irrelevant"
                writes.quiet.append(record)
                report.irrelevant += 1
                metrics.ITEMS.labels("llm-irrelevant").inc()
                log.info("LLM judged item not relevant: %s (%s)", article.title, article.feed,
                         extra={"feed": article.feed})
                return None
            if llm_brief is not None:
                mode = "llm"
                title, summary = llm_brief.title, llm_brief.summary
                figures = llm_brief.figures or figures
        figures = [_fill_labels(f, settings) for f in figures]
        # Feed and model text may carry URLs; only the sources may be links in a posted brief.
        title, summary = ({k: defang_links(v) for k, v in d.items()} for d in (title, summary))
        brief = Brief(id=new_brief_id(article.feed, record.item_key), topics=article.topics, title=title,
                      summary=summary, figures=figures, sources=[source], mode=mode)
        record.status = "briefed"
        targets = [str(t) for t in settings.targets_for(article.topics)]
        writes.new_briefs.append(NewBrief(brief, record, targets, sig.to_dict(), article.lang))
        # In the index at once: this feed's later entries may join it. Nothing else runs before
        # the write, and a story that is not written leaves the index again.
        self._stories.add(brief.id, sig)
        return brief.id


def _fill_labels(figure: Figure, settings: Settings) -> Figure:
    """Every figure carries a label in every brief language (kind-based when unknown), without live links."""
    label = {k: defang_links(v) for k, v in figure.label.items()}
    fallback = {"en": figure.unit and f"figure ({figure.unit})" or "figure",
                "zh": figure.unit and f"数字（{figure.unit}）" or "数字"}
    for lang in settings.languages:
        if not label.get(lang):
            label[lang] = fallback.get(lang, "figure")
    # Usually nothing changes: no copy then (a copy per figure was a measurable part of a cold poll).
    return figure if label == figure.label else figure.model_copy(update={"label": label})
