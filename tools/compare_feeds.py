"""Read directories of feed files with briefbot and with plain feedparser, and compare the entries.

    python -m tools.compare_feeds DIR... [--json]

Both readings go through the same normalisation: title; link; id; published (or else updated, or
else created) to the minute, UTC; the first 100 characters of the text (the longest of content
and summary, HTML turned into text by this module's own converter, not briefbot's); whitespace
collapsed everywhere. "Paired" entries are those feedparser gives with a title or text, each
matched to one of briefbot's by id, then link, then title, then by order among the rest; one
feedparser has and briefbot does not is lost. Per directory it prints how many paired entries
agree on each field, the lost entries, the files either reader cannot read, and every divergence.
"""

from __future__ import annotations

import argparse
import calendar
import io
import json
import re
import sys
import warnings
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from html.parser import HTMLParser
from pathlib import Path

from tools.feed_files import FeedFile, feed_files

__all__ = ["FIELDS", "Divergence", "Report", "compare_directory", "main", "normalise"]

FIELDS = ("title", "link", "id", "published", "text")
TEXT_PREFIX = 100
_SPACE_RE = re.compile(r"\s+")


def normalise(value: str | None) -> str:
    return _SPACE_RE.sub(" ", value or "").strip()


class _TextOf(HTMLParser):
    """HTML -> text with a space at each block boundary; script and style dropped."""

    _BLOCKS = frozenset({"p", "div", "br", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "td",
                         "th", "table", "blockquote", "pre", "section", "article", "header", "footer", "hr",
                         "dd", "dt", "dl", "figure", "figcaption"})
    _SKIPPED = frozenset({"script", "style"})

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag, attrs):
        self.skipping += tag in self._SKIPPED
        if tag in self._BLOCKS:
            self.parts.append(" ")

    def handle_endtag(self, tag):
        self.skipping -= tag in self._SKIPPED and self.skipping > 0
        if tag in self._BLOCKS:
            self.parts.append(" ")

    def handle_data(self, data):
        if not self.skipping:
            self.parts.append(data)


def html_text(html: str) -> str:
    parser = _TextOf()
    parser.feed(html)
    parser.close()
    return normalise("".join(parser.parts))


def _construct_text(value: str, kind: str | None) -> str:
    """A text construct as a reader shows it: HTML as text, plain text as written."""
    return html_text(value) if "html" in (kind or "text/plain") else normalise(value)


def _minute(when: datetime | None) -> str:
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%MZ") if when else ""


def _struct_minute(parsed) -> str:
    try:
        return _minute(datetime.fromtimestamp(calendar.timegm(parsed), tz=timezone.utc)) if parsed else ""
    except (OverflowError, ValueError, TypeError, OSError):
        return ""


def _feedparser_entry(raw) -> dict[str, str]:
    texts = [_construct_text(c.get("value") or "", c.get("type")) for c in raw.get("content") or []]
    # feedparser copies the content into a missing summary without a summary_detail: same type.
    kinds = [d.get("type") for d in [raw.get("summary_detail") or {}, *(raw.get("content") or [])] if d.get("type")]
    texts.append(_construct_text(raw.get("summary") or "", kinds[0] if kinds else None))
    text = max(texts, key=len)  # the first of the longest, as briefbot chooses
    when = next((raw.get(k) for k in ("published_parsed", "updated_parsed", "created_parsed") if raw.get(k)), None)
    return {"title": _construct_text(raw.get("title") or "", (raw.get("title_detail") or {}).get("type")),
            "link": normalise(raw.get("link")), "id": normalise(raw.get("id")),
            "published": _struct_minute(when), "text": text[:TEXT_PREFIX]}


def read_with_feedparser(document: FeedFile) -> list[dict[str, str]]:
    import feedparser

    headers = {"content-location": document.url, **document.headers}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = feedparser.parse(io.BytesIO(document.body), response_headers=headers)
    return [_feedparser_entry(raw) for raw in result.get("entries") or []]


def read_with_briefbot(document: FeedFile) -> list[dict[str, str]]:
    from bot.ingest.parse import parse_feed

    feed = parse_feed(document.body, document.content_type, document.url)
    return [{"title": normalise(e.title), "link": normalise(e.link), "id": normalise(e.guid),
             "published": _minute(e.published), "text": normalise(e.text)[:TEXT_PREFIX],
             "headline_made": _made_from_text(normalise(e.title), normalise(e.text))} for e in feed.entries]


def _made_from_text(title: str, text: str) -> bool:
    """Whether a title is the start of the entry's own text, as the headline briefbot makes for an
    untitled item is (its first sentence, shortened with "…")."""
    start = title.removesuffix("\u2026").rstrip(" ,;:\uff0c\uff1b\uff1a\u3001-\u2013\u2014.\u3002")
    return text.startswith(start) if start else title == text


def pair_entries(theirs: list[dict], ours: list[dict]) -> tuple[list[tuple[dict, dict]], list[dict]]:
    """(pairs, lost): feedparser's entries with a title or text matched to briefbot's one to one."""
    wanted = [e for e in theirs if e["title"] or e["text"]]
    free = list(range(len(ours)))
    matched: dict[int, int] = {}
    for key in ("id", "link", "title"):
        for i, entry in enumerate(wanted):
            if i in matched or not entry[key]:
                continue
            j = next((j for j in free if ours[j][key] == entry[key]), None)
            if j is not None:
                matched[i] = j
                free.remove(j)
    rest = [i for i in range(len(wanted)) if i not in matched]
    for i, j in zip(rest, list(free)):  # what is left pairs in document order
        matched[i] = j
    pairs = [(wanted[i], ours[matched[i]]) for i in sorted(matched)]
    return pairs, [wanted[i] for i in range(len(wanted)) if i not in matched]


@dataclass
class Divergence:
    file: str
    field: str
    briefbot: str
    feedparser: str


@dataclass
class Report:
    directory: str
    files: int = 0
    feedparser_entries: int = 0
    paired: int = 0
    headlines_made: int = 0  # paired entries feedparser gives no title, briefbot one from the text
    agree: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FIELDS + ("all",), 0))
    lost: list[dict] = field(default_factory=list)
    only_briefbot: int = 0  # briefbot's entries paired with none of feedparser's (JSON Feed, for one)
    unreadable: list[dict] = field(default_factory=list)
    divergences: list[Divergence] = field(default_factory=list)

    def share(self, name: str) -> float:
        return self.agree[name] / self.paired if self.paired else 1.0

    def add_figures(self, other: Report) -> None:
        """Add `other`'s counts (not its listings) to these: a total over several directories."""
        self.files += other.files
        self.feedparser_entries += other.feedparser_entries
        self.paired += other.paired
        self.headlines_made += other.headlines_made
        self.only_briefbot += other.only_briefbot
        self.agree = {name: count + other.agree[name] for name, count in self.agree.items()}


def _read(reader, document: FeedFile) -> tuple[list[dict], str | None]:
    try:
        return reader(document), None
    except Exception as exc:  # a file either reader cannot read is a finding, not the end of the run
        return [], f"{type(exc).__name__}: {normalise(str(exc))[:200]}"


def compare_document(document: FeedFile, report: Report) -> None:
    report.files += 1
    if document.error:
        report.unreadable.append({"file": document.name, "reader": "either", "error": document.error})
        return
    theirs, their_error = _read(read_with_feedparser, document)
    ours, our_error = _read(read_with_briefbot, document)
    for reader, error in (("feedparser", their_error), ("briefbot", our_error)):
        if error and (reader == "feedparser" or theirs):
            report.unreadable.append({"file": document.name, "reader": reader, "error": error})
    report.feedparser_entries += len(theirs)
    pairs, lost = pair_entries(theirs, ours)
    report.lost.extend({"file": document.name, **entry} for entry in lost)
    report.paired += len(pairs)
    report.only_briefbot += len(ours) - len(pairs)
    for their, our in pairs:
        differing = [name for name in FIELDS if their[name] != our[name]]
        if "title" in differing and not their["title"] and our["headline_made"]:
            differing.remove("title")  # an untitled item, given a headline from its text
            report.headlines_made += 1
        for name in FIELDS:
            report.agree[name] += name not in differing
        report.agree["all"] += not differing
        report.divergences.extend(Divergence(document.name, name, our[name], their[name]) for name in differing)


def compare_directory(directory: str) -> Report:
    report = Report(directory)
    for document in feed_files(directory):
        compare_document(document, report)
    return report


def _print_report(report: Report, out, listings: bool = True) -> None:
    print(f"{report.directory}: {report.files} documents, {report.feedparser_entries} feedparser entries, "
          f"{report.paired} paired ({report.headlines_made} untitled, headlined from their text), "
          f"{len(report.lost)} lost, {report.only_briefbot} only briefbot's", file=out)
    for name in FIELDS + ("all",):
        print(f"  {name:<10} {report.agree[name]:>6} / {report.paired:<6} {report.share(name):7.2%}", file=out)
    if not listings:
        return
    for item in report.unreadable:
        print(f"  UNREADABLE by {item['reader']}: {item['file']}: {item['error']}", file=out)
    for entry in report.lost:
        print(f"  LOST {entry['file']}: title={entry['title']!r} text={entry['text'][:40]!r} id={entry['id']!r} "
              f"link={entry['link']!r}", file=out)
    for d in report.divergences:
        print(f"  DIFF {d.file} {d.field}: briefbot={d.briefbot!r} feedparser={d.feedparser!r}", file=out)


def main(argv: list[str] | None = None, out=None) -> int:
    out = out or sys.stdout
    parser = argparse.ArgumentParser(prog="python -m tools.compare_feeds", description=__doc__.split("\n\n")[0])
    parser.add_argument("directories", nargs="+", metavar="DIR", help="directories (or files) of feed documents")
    parser.add_argument("--json", action="store_true", help="one JSON object per directory")
    args = parser.parse_args(argv)
    missing = [d for d in args.directories if not Path(d).exists()]
    if missing:
        parser.error(f"no such file or directory: {', '.join(missing)}")
    total, lost = Report("total"), 0
    for directory in args.directories:
        report = compare_directory(directory)
        _emit(report, args.json, out)
        total.add_figures(report)
        lost += len(report.lost)
    if len(args.directories) > 1:
        total.lost = [{}] * lost  # counted, listed above under each directory
        _emit(total, args.json, out, listings=False)
    return 0


def _emit(report: Report, as_json: bool, out, listings: bool = True) -> None:
    if as_json:
        shares = {name: round(report.share(name), 4) for name in FIELDS + ("all",)}
        fields = asdict(report) if listings else {**asdict(report), "lost": len(report.lost)}
        print(json.dumps({**fields, "share": shares}, ensure_ascii=False), file=out)
    else:
        _print_report(report, out, listings)


if __name__ == "__main__":
    sys.exit(main())
