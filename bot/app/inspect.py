"""`briefbot inspect SOURCE…`: why an entry did (or did not) post.

Each SOURCE — a feed URL, fetched as a poll fetches it (same fetcher, same SSRF guard), a
configured feed's name, or a local file — is parsed and analysed by the code the poll's parser
worker runs, and each entry is judged as the poll judges it: seen before, too old, off-topic, or
new. The database is opened read-only (and may be absent: then nothing counts as seen); nothing
is written anywhere.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Iterable

from sqlalchemy import create_engine, or_, select
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from bot.analyse.identity import ItemIdentity
from bot.analyse.numbers import key_figures
from bot.analyse.text import detect_language
from bot.analyse.topics import TopicMatch, TopicMatcher
from bot.config import Env, FeedConfig, Settings, format_duration
from bot.ingest.fetch import Fetcher
from bot.ingest.parse import ParsedEntry
from bot.ingest.urls import redact_url
from bot.models import utcnow
from bot.pipeline.facts import AnalysedFeed, EntryFacts
from bot.pipeline.parser_worker import parse_in_worker
from bot.pipeline.poll import FUTURE_TOLERANCE
from bot.store import make_engine
from bot.store import schema as t
from bot.summarise.injection import planted_sentences, strip_planted

__all__ = ["inspect_command", "inspect_sources"]

NEW, SEEN, TOO_OLD, OFF_TOPIC = "new", "seen", "too old", "off-topic"
EXIT_FAILED, EXIT_DATABASE = 1, 3
_TEXT_PREVIEW = 160


@dataclass
class Source:
    """A SOURCE as read: its bytes, or why there are none."""
    shown: str  # as printed: a URL without its query string and credentials, or the path given
    url: str  # what relative links are joined on
    feed: FeedConfig | None = None  # the configured feed it is, if any
    body: bytes | None = None
    content_type: str | None = None
    error: str | None = None


# --------------------------------------------------------------------------- the database, read-only

class DatabaseUnreadable(Exception):
    """The configured database exists but cannot be read."""


def _first_line(exc: BaseException) -> str:
    cause = getattr(exc, "orig", None) or exc
    return f"{type(cause).__name__}: {(str(cause).strip().splitlines() or [''])[0]}"


class ReadOnlyItems:
    """The entries the poll has recorded, through connections that cannot write: SQLite opened with
    mode=ro, PostgreSQL in read-only transactions. None of the store's start-up work (migrations,
    the journal-mode pragma) runs."""

    def __init__(self, engine: Engine, owner: Engine):
        self.engine, self._owner = engine, owner

    @classmethod
    def open(cls, database_url: str) -> ReadOnlyItems | None:
        """None when there is no database yet (a SQLite file that does not exist)."""
        try:
            url = make_url(database_url)
        except ArgumentError as exc:
            raise DatabaseUnreadable(f"DATABASE_URL is not a database URL ({exc})") from None
        if url.get_backend_name() == "sqlite":
            path = url.database
            if not path or path == ":memory:" or not Path(path).is_file():
                return None
            uri = Path(path).resolve().as_uri() + "?mode=ro"
            engine = create_engine("sqlite://", creator=lambda: sqlite3.connect(uri, uri=True, timeout=30),
                                   poolclass=NullPool)
            items = cls(engine, engine)
        else:
            owner = make_engine(database_url)
            items = cls(owner.execution_options(postgresql_readonly=True), owner)
        items._probe()
        return items

    def _probe(self) -> None:
        try:
            with self.engine.connect() as c:
                c.execute(select(t.items.c.id).limit(1)).all()
        except SQLAlchemyError as exc:
            self.close()
            raise DatabaseUnreadable(f"cannot read the database's items ({_first_line(exc)})") from None

    def recorded(self, feed: str | None, idents: Iterable[ItemIdentity]) -> dict[str, str]:
        """key -> the feed that recorded it, for these identities' item, link and content keys: those of
        `feed` (what its poll checks), or of any feed when the source is no configured feed."""
        idents = list(idents)
        if not idents:
            return {}
        i = t.items.c
        stmt = select(i.feed, i.item_key, i.link_key, i.content_key).where(or_(
            i.item_key.in_([x.item_key for x in idents]),
            i.link_key.in_([x.link_key for x in idents if x.link_key]),
            i.content_key.in_([x.content_key for x in idents if x.content_key])))
        if feed is not None:
            stmt = stmt.where(i.feed == feed)
        try:
            with self.engine.connect() as c:
                rows = c.execute(stmt).all()
        except SQLAlchemyError as exc:
            raise DatabaseUnreadable(f"cannot read the database's items ({_first_line(exc)})") from None
        found: dict[str, str] = {}
        for row in rows:
            for key in row[1:]:
                if key:
                    found.setdefault(key, row.feed)
        return found

    def close(self) -> None:
        self._owner.dispose()


# --------------------------------------------------------------------------- reading sources

def _configured(source: str, settings: Settings) -> FeedConfig | None:
    return next((f for f in settings.feeds if source in (f.url, f.name)), None)


def _read_file(source: str, path: Path, limit: int) -> Source:
    shown = source
    try:
        with path.open("rb") as handle:
            body = handle.read(limit + 1)
    except OSError as exc:
        return Source(shown, "", error=f"cannot read {source}: {exc.strerror or exc}")
    if len(body) > limit:
        return Source(shown, "", error=f"{source} is larger than the {limit}-byte limit (fetch.max_bytes)")
    return Source(shown, path.resolve().as_uri(), body=body)


async def _fetch_all(urls: list[str], settings: Settings, env: Env) -> dict[str, Source]:
    fetcher = Fetcher(settings.fetch, allow_private=env.allow_private_urls)
    try:
        results = await asyncio.gather(*(fetcher.fetch(url) for url in urls))
    finally:
        await fetcher.aclose()
    read = {}
    for url, result in zip(urls, results):
        if result.status != "ok":
            read[url] = Source(redact_url(url), url, error=result.error or "fetch failed")
        else:
            read[url] = Source(redact_url(url), result.final_url or url, body=result.body or b"",
                               content_type=result.content_type)
    return read


def read_sources(sources: list[str], settings: Settings, env: Env) -> list[Source]:
    """Every SOURCE's bytes: a file when one exists at that path, else a configured feed's name or
    URL, else a URL; fetched URLs go through the poll's fetcher, all at once."""
    plan: list[tuple[str, FeedConfig | None, str | None]] = []  # (source, feed, URL to fetch)
    read: dict[str, Source] = {}
    for source in sources:
        feed = _configured(source, settings)
        if "://" not in source and Path(source).exists():
            read[source] = _read_file(source, Path(source), settings.fetch.max_bytes)
            plan.append((source, None, None))
        elif feed is not None or "://" in source:
            plan.append((source, feed, feed.url if feed else source))
        else:
            read[source] = Source(source, "",
                                  error=f"{source}: no such file, and not a URL or a configured feed's name")
            plan.append((source, None, None))
    urls = list(dict.fromkeys(url for _, _, url in plan if url))
    fetched = asyncio.run(_fetch_all(urls, settings, env)) if urls else {}
    out = []
    for source, feed, url in plan:
        got = read[source] if url is None else fetched[url]
        out.append(Source(got.shown if feed is None else f"{feed.name} ({got.shown})", got.url, feed, got.body,
                          got.content_type, got.error))
    return out


# --------------------------------------------------------------------------- judging entries

@dataclass
class Judged:
    verdict: str
    reason: str


def _seen_by(ident: ItemIdentity, recorded: dict[str, str]) -> str | None:
    return next((recorded[k] for k in (ident.item_key, ident.link_key, ident.content_key) if k in recorded), None)


def _off_topic_reason(matches: list[TopicMatch], allowed: list[str], facts: EntryFacts) -> str:
    excluded = [m for m in matches if m.exclude]
    not_followed = [t for t in facts.topics if t not in allowed]
    if not_followed:
        return (f"matches {', '.join(not_followed)}, which this feed does not follow "
                f"(its topics: {', '.join(allowed) or 'none'})")
    if excluded:
        return "; ".join(f'{m.topic}: "{m.keyword}" found, but excluded by "{m.exclude}"' for m in excluded)
    return "no topic keyword in the title or text"


def _age(delta: timedelta) -> str:
    for unit, size in (("d", timedelta(days=1)), ("h", timedelta(hours=1))):
        if delta >= size:
            return f"{delta // size}{unit}"
    return f"{delta // timedelta(minutes=1)}m"


class Judge:
    """The poll's decision for each entry of one document (bot.pipeline.poll's _decide_entries), in
    the same order: a repeat within the document, seen before, too old, off-topic, new."""

    def __init__(self, settings: Settings, feed: FeedConfig | None, recorded: dict[str, str], now: datetime):
        self.max_age: timedelta = (feed.max_age if feed else None) or settings.max_age
        self.allowed = settings.feed_topics(feed) if feed else list(settings.topics)
        self.recorded, self.now = recorded, now
        self._first_at: dict[str, int] = {}

    def __call__(self, index: int, entry: ParsedEntry, facts: EntryFacts, matches: list[TopicMatch]) -> Judged:
        ident = facts.ident
        if ident.item_key in self._first_at:
            return Judged(SEEN, f"repeats entry {self._first_at[ident.item_key] + 1} of this document")
        self._first_at[ident.item_key] = index
        by = _seen_by(ident, self.recorded)
        if by is not None:
            return Judged(SEEN, f"already recorded by feed {by!r}")
        published = entry.published
        if published and published > self.now + FUTURE_TOLERANCE:
            published = self.now  # a publisher's clock error: the poll reads it as now
        if published and self.now - published > self.max_age:
            return Judged(TOO_OLD, f"published {_age(self.now - published)} ago; the limit is "
                                   f"{format_duration(self.max_age)} (max_age)")
        if not [t for t in facts.topics if t in self.allowed]:
            return Judged(OFF_TOPIC, _off_topic_reason(matches, self.allowed, facts))
        return Judged(NEW, "would be briefed now (or join a story already told)")


def _entry_report(source: Source, entry: ParsedEntry, facts: EntryFacts, matches: list[TopicMatch],
                  judged: Judged) -> dict:
    both = entry.title + "\n" + entry.text
    # The poll works out language and figures for on-topic entries only; shown here for every one.
    lang = facts.lang or detect_language(both)
    # Sentences addressed to an AI: the brief leaves them out (and their figures) and says so.
    text, planted_in_text = strip_planted(entry.text)
    planted = planted_sentences(entry.title) + planted_in_text
    figures = facts.figures if facts.figures is not None else key_figures(text, lang)
    reason = judged.reason + (f"; {len(planted)} sentence(s) aimed at automated readers left out" if planted else "")
    report = {"source": source.shown, "title": entry.title, "link": entry.link, "id": entry.guid,
              "published": entry.published.isoformat().replace("+00:00", "Z") if entry.published else None,
              "lang": lang, "text": entry.text, "topics": list(facts.topics),
              "matched_by": [{"topic": m.topic, "keyword": m.keyword, "exclude": m.exclude} for m in matches],
              "figures": [f._asdict() for f in figures], "verdict": judged.verdict, "reason": reason}
    return {**report, "planted": planted} if planted else report


def inspect_source(source: Source, settings: Settings, items: ReadOnlyItems | None,
                   content_type: str | None = None, now: datetime | None = None) -> list[dict] | str:
    """One report per entry of a source that was read, or why it cannot be read as a feed (naming it)."""
    matcher = TopicMatcher(settings)
    try:
        analysed = parse_in_worker(source.body or b"", content_type or source.content_type, source.url, matcher)
    except Exception as exc:  # as in the poll's parser worker: one bad document is one line, not a traceback
        return f"{source.shown}: the parser failed ({type(exc).__name__}: {str(exc)[:300]})"
    if not isinstance(analysed, AnalysedFeed):
        return f"{source.shown}: {analysed}"
    parsed, facts = analysed
    recorded = items.recorded(source.feed.name if source.feed else None, [f.ident for f in facts]) if items else {}
    judge = Judge(settings, source.feed, recorded, now or utcnow())
    reports = []
    for index, (entry, fact) in enumerate(zip(parsed.entries, facts)):
        matches = matcher.explain(entry.title + "\n" + entry.text)
        reports.append(_entry_report(source, entry, fact, matches, judge(index, entry, fact, matches)))
    return reports


def inspect_sources(sources: list[str], settings: Settings, env: Env, content_type: str | None = None):
    """(source shown, entry reports or the reason it cannot be read) for every SOURCE, in order;
    and a note on what the verdicts could not take into account. Raises DatabaseUnreadable."""
    items = ReadOnlyItems.open(env.database_url)
    note = None if items else "no database yet: nothing counts as seen; verdicts from age and topics only"
    try:
        results = []
        for source in read_sources(sources, settings, env):
            if source.error is not None:
                results.append((source.shown, source.error))
            else:
                results.append((source.shown, inspect_source(source, settings, items, content_type)))
        return results, note
    finally:
        if items:
            items.close()


# --------------------------------------------------------------------------- output

def _render_entry(report: dict) -> str:
    def line(label: str, value) -> str:
        return f"  {label:<10}{value}"

    text = report["text"].replace("\n", " ")
    figures = "; ".join(f["text"] + (f" ({f['label']['en']})" if f["label"].get("en") else "")
                        for f in report["figures"])
    matched = "; ".join(f'{m["topic"]}: "{m["keyword"]}"' + (f', excluded by "{m["exclude"]}"' if m["exclude"] else "")
                        for m in report["matched_by"])
    rows = [f"[{report['verdict']}] {report['title'] or '(untitled)'}",
            line("link", report["link"] or "-"), line("id", report["id"] or "-"),
            line("published", report["published"] or "-"), line("language", report["lang"]),
            line("topics", ", ".join(report["topics"]) or "-"), line("matched", matched or "-"),
            line("figures", figures or "-"),
            *([line("planted", " | ".join(report["planted"]))] if report.get("planted") else []),
            line("text", text[:_TEXT_PREVIEW] + ("…" if len(text) > _TEXT_PREVIEW else "") or "-"),
            line("verdict", f"{report['verdict']}: {report['reason']}")]
    return "\n".join(rows)


def _print_text(results) -> None:
    for shown, outcome in results:
        if isinstance(outcome, str):
            print(f"briefbot: inspect: {outcome}", file=sys.stderr)
            continue
        counts = {v: sum(r["verdict"] == v for r in outcome) for v in (NEW, SEEN, TOO_OLD, OFF_TOPIC)}
        summary = ", ".join(f"{n} {v}" for v, n in counts.items() if n)
        print(f"== {shown}: {len(outcome)} entries" + (f" ({summary})" if summary else ""))
        for report in outcome:
            print(_render_entry(report))


def _print_json(results) -> None:
    for shown, outcome in results:
        rows = [{"source": shown, "error": outcome}] if isinstance(outcome, str) else outcome
        for row in rows:
            print(json.dumps(row, ensure_ascii=False))


def inspect_command(args, settings: Settings, env: Env) -> int:
    # This command reports every fetch error itself, once, on the line of its source.
    logging.getLogger("briefbot.fetch").setLevel(logging.WARNING)
    try:
        results, note = inspect_sources(args.sources, settings, env, args.content_type)
    except DatabaseUnreadable as exc:
        print(f"briefbot: inspect: {exc}", file=sys.stderr)
        return EXIT_DATABASE
    if note:
        print(f"briefbot: inspect: {note}", file=sys.stderr)
    if args.json:
        _print_json(results)
    else:
        _print_text(results)
    return EXIT_FAILED if all(isinstance(outcome, str) for _, outcome in results) else 0
