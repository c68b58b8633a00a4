"""Builders for test feeds (RSS 2.0 / Atom), so each test states exactly the entries it serves."""

from __future__ import annotations

import json
from pathlib import Path

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from html import escape

from bot.app.container import App, make_dispatcher, make_poller
from bot.config import Env, Settings


@dataclass
class Entry:
    title: str
    body: str
    guid: str | None = None
    link: str | None = None
    hours_ago: float = 1.0

    def when(self, now: datetime | None = None) -> datetime:
        now = now or datetime.now(timezone.utc)
        return (now - timedelta(hours=self.hours_ago)).replace(microsecond=0)


def rss(entries: list[Entry], title: str = "Test wire", encoding: str = "utf-8") -> bytes:
    items = []
    for e in entries:
        guid = f"<guid isPermaLink=\"false\">{escape(e.guid)}</guid>" if e.guid else ""
        link = f"<link>{escape(e.link)}</link>" if e.link else ""
        items.append(f"<item><title>{escape(e.title)}</title>{link}{guid}"
                     f"<pubDate>{format_datetime(e.when())}</pubDate>"
                     f"<description>{escape(e.body)}</description></item>")
    text = (f'<?xml version="1.0" encoding="{encoding}"?>\n<rss version="2.0"><channel><title>{escape(title)}</title>'
            f"<link>https://wire.example/</link><description>test</description>{''.join(items)}</channel></rss>")
    return text.encode(encoding)


def atom(entries: list[Entry], title: str = "Test atom") -> bytes:
    parts = []
    for e in entries:
        stamp = e.when().isoformat().replace("+00:00", "Z")
        link = f'<link href="{escape(e.link)}"/>' if e.link else ""
        parts.append(f"<entry><title>{escape(e.title)}</title><id>{escape(e.guid or e.link or e.title)}</id>{link}"
                     f"<updated>{stamp}</updated><published>{stamp}</published>"
                     f'<summary type="html">{escape(e.body)}</summary></entry>')
    return (f'<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
            f"<title>{escape(title)}</title><id>urn:test</id><updated>2026-01-01T00:00:00Z</updated>"
            f"{''.join(parts)}</feed>").encode()


TOPICS = {
    "rare-earth": {"label": {"en": "Rare earths", "zh": "稀土"},
                   "keywords": ["rare earth", "rare earths", "稀土", "antimony", "锑", "gallium", "镓", "NdPr", "镨钕"]},
    "tariff": {"label": {"en": "Tariffs", "zh": "关税"},
               "keywords": ["tariff", "tariffs", "关税", "trade war", "贸易战"],
               "exclude": ["energy tariff", "price cap", "电价"]},
}


def make_settings(tmp_path, feeds: list[dict], targets: list[str] | None = None, **extra) -> Settings:
    data = {"languages": ["en", "zh"], "topics": TOPICS, "feeds": feeds,
            "routes": [{"name": "all", "to": targets or ["jsonl:out/briefs.jsonl"]}], **extra}
    settings = Settings.model_validate(data)
    settings.source_path = tmp_path / "feeds.yaml"
    return settings


def make_env(db_url: str, **overrides) -> Env:
    # In-process tests parse inline (no worker process per test); tests/test_parse_pool.py and the
    # tests that run `briefbot` as a subprocess cover the default, a parser process.
    env = Env.from_environ({"DATABASE_URL": db_url, "BRIEFBOT_ALLOW_PRIVATE_URLS": "1",
                            "BRIEFBOT_PARSE_WORKERS": "0"})
    return env.replace(**overrides)


def lines(path: Path) -> list[dict]:
    """The JSON objects a jsonl target wrote, in order (none when the file does not exist yet)."""
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []


async def poll_and_deliver(app: App, force: bool = True) -> list:
    """One cycle as `briefbot poll --once` runs it: poll every feed, then deliver until nothing is due."""
    reports = await make_poller(app).poll_all(force=force)
    dispatcher = make_dispatcher(app)
    while await dispatcher.dispatch_once():
        pass
    return reports
