"""What the dashboard tests share (no tests of its own): a store seeded with known stories and
deliveries, the bot's own HTTP server (health + dashboard) on a loopback port in a thread, and a
plain HTTP client that follows no redirect and keeps its cookies."""

from __future__ import annotations

import asyncio
import http.client
import re
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from urllib.parse import urlencode

from feedgen import make_env, make_settings
from storedata import save_brief

from bot.app.container import App, build_app, close_app
from bot.app.health import make_health_app
from bot.models import Brief, Figure, Source
from bot.store import ItemRecord, Store

TOKEN = "dashboard-test-token-5b1c9e"
WEBHOOK_SECRET = "WebhookSecretPart0123456789"
TARGETS = ["jsonl:out/briefs.jsonl", f"discord-webhook:https://discord.com/api/webhooks/123456789012345678/{WEBHOOK_SECRET}"]
FEEDS = [{"name": "wire-en", "url": "http://127.0.0.1:9/en.xml"}, {"name": "wire-zh", "url": "http://127.0.0.1:9/zh.xml"},
         {"name": "quiet-feed", "url": "http://127.0.0.1:9/q.xml", "enabled": False}]
DIGESTS = [{"name": "morning", "cron": "0 8 * * *", "to": ["jsonl:out/digest.jsonl"]}]


HEADLINES = {
    "rare-earth": ["China tightens rare earth export controls", "NdPr oxide prices climb on supply worries",
                   "Antimony shipments stall at ports", "Gallium licences cut exports by a third"],
    "tariff": ["US raises tariffs on EV batteries to 25%", "EU weighs tariff on Chinese magnets",
               "Canada matches US steel tariffs", "Tariff truce extended for 90 days"],
}


def make_brief(n: int, topic: str, created: datetime, title_en: str, title_zh: str, feed: str = "wire-en") -> Brief:
    return Brief(id=f"b_test{n:04d}", topics=[topic], title={"en": title_en, "zh": title_zh},
                 summary={"en": f"{title_en}. Prices rose 4.5%.", "zh": f"{title_zh}。价格上涨4.5%。"},
                 figures=[Figure(text="4.5%", value=4.5, unit="%", label={"en": "price rise", "zh": "涨幅"})],
                 sources=[Source(url=f"https://news.example/{n}", feed=feed, title=title_en,
                                 published=created - timedelta(minutes=30))],
                 mode="extractive", created=created)


def save(store: Store, brief: Brief, targets: list[str] = ()) -> None:
    record = ItemRecord(feed=brief.sources[0].feed, item_key=brief.id, guid=brief.id, link=brief.primary_url,
                        link_key=None, content_key=None, title=brief.title["en"], published=brief.created,
                        status="briefed", topics=brief.topics)
    assert save_brief(store, brief, record, targets=list(targets), now=brief.created)


@dataclass
class Seeded:
    """What was stored: stories per (topic, UTC day), the briefs, and the failed delivery."""
    per_day: dict[tuple[str, str], int] = field(default_factory=dict)
    briefs: list[Brief] = field(default_factory=list)
    failed_id: int = 0
    failed_brief: str = ""


def seed(store: Store, now: datetime) -> Seeded:
    """Stories over the last two weeks in a known pattern; the newest brief went to both targets,
    and its Discord delivery failed permanently."""
    out = Seeded()
    pattern = {"rare-earth": [3, 0, 1, 5, 2], "tariff": [1, 4, 0, 2, 6]}
    n = 0
    for topic, counts in pattern.items():
        for days_ago, count in zip((0, 1, 3, 7, 13), counts):
            day = (now - timedelta(days=days_ago)).replace(hour=0, minute=30, second=0, microsecond=0)
            for i in range(count):
                n += 1
                zh = "稀土出口管制收紧" if topic == "rare-earth" else "关税上调至百分之二十五"
                headlines = HEADLINES[topic]
                brief = make_brief(n, topic, day + timedelta(minutes=i), f"{headlines[n % len(headlines)]} ({n})",
                                   f"{zh}（{n}）")
                save(store, brief)
                out.briefs.append(brief)
                key = (topic, day.date().isoformat())
                out.per_day[key] = out.per_day.get(key, 0) + 1
    newest = make_brief(n + 1, "rare-earth", now - timedelta(minutes=5), "Gallium export curbs widen",
                        "镓出口管制扩大", feed="wire-zh")
    save(store, newest, TARGETS)
    out.briefs.append(newest)
    out.per_day[("rare-earth", newest.created.date().isoformat())] = \
        out.per_day.get(("rare-earth", newest.created.date().isoformat()), 0) + 1
    rows = {r.target: r for r in store.outbox_rows(ref_id=newest.id)}
    store.outbox_sent(rows[TARGETS[0]].id, external_id="line-1")
    failed = rows[TARGETS[1]]
    store.outbox_failed(failed.id, f"401 Unauthorized from https://discord.com/api/webhooks/123456789012345678/{WEBHOOK_SECRET}")
    out.failed_id, out.failed_brief = failed.id, newest.id
    fire = (now - timedelta(days=1)).replace(hour=8, minute=0, second=0, microsecond=0)
    posted = [b.to_json_dict() for b in out.briefs[:3]]
    store.claim_digest_run("morning", f"{fire:%Y-%m-%d}", fire, "test", {"sections": [{"briefs": posted}]})
    return out


class BotHttpServer:
    """The running bot's HTTP server (`make_health_app`: /healthz, /metrics and the dashboard),
    served from its own event loop in a thread on 127.0.0.1."""

    def __init__(self, app: App):
        self.app = app
        self.loop = asyncio.new_event_loop()
        self.port = 0
        self._runner = None
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> "BotHttpServer":
        from aiohttp import web

        self._thread.start()

        async def start() -> int:
            self._runner = web.AppRunner(make_health_app(self.app), access_log=None)
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            await site.start()
            return site._server.sockets[0].getsockname()[1]

        self.port = asyncio.run_coroutine_threadsafe(start(), self.loop).result(30)
        return self

    def __exit__(self, *exc) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self.loop).result(30)
        asyncio.run_coroutine_threadsafe(close_app(self.app), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def make_app(tmp_path, db_url: str, bind: str = "0.0.0.0", digests: list[dict] | None = None, **env) -> App:
    """The bot built as `briefbot run` builds it; `bind` is BRIEFBOT_BIND, `env` more variables."""
    settings = make_settings(tmp_path, FEEDS, targets=TARGETS, digests=DIGESTS if digests is None else digests)
    return build_app(settings, make_env(db_url, bind=bind, **env))


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    text: str

    def csrf(self) -> str:
        match = re.search(r'name="csrf" value="([0-9a-f]+)"', self.text)
        assert match, f"no CSRF field in: {self.text[:400]}"
        return match.group(1)


class Client:
    """HTTP as curl does it: no redirect followed, cookies kept from one request to the next."""

    def __init__(self, port: int, host: str = "127.0.0.1"):
        self.port, self.host = port, host
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, form: dict | None = None, headers: dict | None = None) -> Reply:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        headers = dict(headers or {})
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        text = response.read().decode("utf-8", "replace")
        for value in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = value.partition("=")
            self.cookies[name.strip()] = rest.split(";", 1)[0]
        conn.close()
        return Reply(response.status, response.headers, text)

    def get(self, path: str, **kw) -> Reply:
        return self.request("GET", path, **kw)

    def post(self, path: str, form: dict, **kw) -> Reply:
        return self.request("POST", path, form=form, **kw)

    def login(self, token: str = TOKEN) -> Reply:
        page = self.get("/login")
        return self.post("/login", {"csrf": page.csrf(), "token": token, "next": "/"})


def utc_now() -> datetime:
    return datetime.now(timezone.utc)
