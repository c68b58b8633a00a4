"""P9 the dashboard's pages with 100k briefs stored: time from request to the last byte of the page.

The store is filled as P5 fills it (100k briefs over 200 days, skewed topics) plus one delivery per
brief (a few hundred failed), 40 feeds with their state, and a digest run per day. The dashboard is
served by the bot's own code (bot.web, aiohttp) on a loopback port and asked for each page in turn
over HTTP with the Bearer token, as a script or a browser would; every reply must be 200 and hold
what the page is for. Target: p99 under 100 ms for every page.

    .venv/bin/python -m bench.p9_dashboard --out /tmp/p9.md [--briefs 100000] [--rounds 60]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from bench.common import Result, machine, make_settings, percentile
from bench.p5_query import TOPIC_SHARES, _topics_config, populate

TARGET_MS = 100.0
TOKEN = "bench-dashboard-token-0123456789"
FEEDS = 40


def _pages(brief_id: str) -> dict[str, tuple[str, str]]:
    """Name -> (path, text the page must contain)."""
    return {
        "overview": ("/", "feed-39"),
        "briefs": ("/briefs", 'class="brief"'),
        "briefs, rare topic": ("/briefs?topic=gallium", 'class="brief"'),
        "briefs, search (zh)": ("/briefs?q=%E9%95%93%E5%87%BA%E5%8F%A3", 'class="brief"'),
        "briefs, search (no match)": ("/briefs?q=zzqx-nothing", 'id="no-briefs"'),
        "one brief": (f"/briefs/{brief_id}", 'id="deliveries"'),
        "deliveries": ("/deliveries", 'id="deliveries"'),
        "deliveries, failed": ("/deliveries?status=failed&since=30d", "retry-"),
        "digests": ("/digests", 'class="digest-preview"'),
        "subscriptions": ("/subscriptions", "feed-39"),
    }


def _fill_the_rest(store, n: int) -> str:
    """Deliveries (one per brief), feed state and digest runs; returns the newest brief's id."""
    from sqlalchemy import insert, select

    from bot.store import schema as t

    with store.engine.connect() as c:
        rows = c.execute(select(t.briefs.c.id, t.briefs.c.created).order_by(t.briefs.c.created)).all()
    for base in range(0, len(rows), 5000):
        batch = []
        for index, (brief_id, created) in enumerate(rows[base:base + 5000], start=base):
            failed = (len(rows) - index) % 333 == 2  # one in 333, the second newest brief among them
            batch.append({"kind": "brief", "ref_id": brief_id, "target": "jsonl:out/briefs.jsonl",
                          "status": "failed" if failed else "sent", "attempts": 1, "created": created,
                          "next_attempt_at": created, "sent_at": None if failed else created,
                          "last_error": "HTTP 500 from the chat API" if failed else None,
                          "external_id": None if failed else f"line-{brief_id}"})
        with store.engine.begin() as c:
            c.execute(insert(t.outbox), batch)
    now = datetime.now(timezone.utc)
    for i in range(FEEDS):
        store.ensure_feed(f"feed-{i}", f"https://wire.example/{i}.xml")
        store.update_feed(f"feed-{i}", last_fetch_at=now, last_success_at=now, last_status="ok",
                          items_total=n // FEEDS, next_poll_at=now + timedelta(minutes=10))
    for day in range(200):
        fire = (now - timedelta(days=day)).replace(hour=8, minute=0, second=0, microsecond=0)
        store.claim_digest_run("morning", f"{fire:%Y-%m-%d}", fire, "bench", {"sections": []})
    return rows[-1][0]


async def _measure(port: int, pages: dict[str, tuple[str, str]], rounds: int) -> dict[str, list[float]]:
    import aiohttp

    times: dict[str, list[float]] = {name: [] for name in pages}
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with aiohttp.ClientSession(f"http://127.0.0.1:{port}", headers=headers) as session:
        for name, (path, must) in pages.items():  # warm: statement cache, templates, pages in memory
            async with session.get(path) as reply:
                text = await reply.text()
                assert reply.status == 200 and must in text, (name, reply.status, text[:300])
        for _ in range(rounds):
            for name, (path, _must) in pages.items():
                t0 = time.perf_counter()
                async with session.get(path) as reply:
                    await reply.read()
                    assert reply.status == 200, (name, reply.status)
                times[name].append(time.perf_counter() - t0)
    return times


async def _serve_and_measure(deps, pages, rounds: int) -> dict[str, list[float]]:
    from aiohttp import web

    from bot.web.server import dashboard_app

    runner = web.AppRunner(dashboard_app(deps), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        return await _measure(site._server.sockets[0].getsockname()[1], pages, rounds)
    finally:
        await runner.cleanup()


def run(n: int = 100_000, rounds: int = 60, workdir: Path | None = None, log=print) -> list[Result]:
    from bot.app.container import default_registry, settle_heap
    from bot.config import Env
    from bot.store import Store
    from bot.subscriptions import SubscriptionService
    from bot.web.deps import DashboardDeps

    workdir = Path(workdir or tempfile.mkdtemp(prefix="briefbot-p9-"))
    workdir.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{workdir}/p9.db"
    store = Store(url)
    store.create()
    try:
        log(f"P9: storing {n} briefs, {n} deliveries, {FEEDS} feeds …")
        populate(store, n)
        newest = _fill_the_rest(store, n)
        feeds = [{"name": f"feed-{i}", "url": f"https://wire.example/{i}.xml"} for i in range(FEEDS)]
        settings = make_settings(feeds, routes=[{"name": "all", "to": ["jsonl:out/briefs.jsonl"]}],
                                 topics=_topics_config(),
                                 digests=[{"name": "morning", "cron": "0 8 * * *", "to": ["jsonl:out/d.jsonl"]}])
        env = Env.from_environ({"DATABASE_URL": url, "BRIEFBOT_WEB_TOKEN": TOKEN, "BRIEFBOT_BIND": "127.0.0.1"})
        registry = default_registry()
        service = SubscriptionService(lambda: settings, store)
        deps = DashboardDeps(settings=lambda: settings, store=store, env=env, show_target=str,
                             parse_target=registry.parse_target, subscriptions=lambda: service, secrets=[TOKEN])
        pages = _pages(newest)
        settle_heap()  # as `briefbot run` and `briefbot dashboard` do once started
        log(f"P9: {len(pages)} pages x {rounds} rounds over HTTP …")
        times = asyncio.run(_serve_and_measure(deps, pages, rounds))
    finally:
        store.close()
    p99 = {name: percentile(ts, 99) * 1000 for name, ts in times.items()}
    p50 = {name: percentile(ts, 50) * 1000 for name, ts in times.items()}
    worst = max(p99, key=p99.get)
    details = [f"{name}: p50 {p50[name]:.1f} ms, p99 {p99[name]:.1f} ms ({len(times[name])} requests)"
               for name in pages]
    details.append(f"{n} briefs over 200 days (topics {', '.join(TOPIC_SHARES)}), {n} deliveries, SQLite, "
                   f"sequential requests with the Bearer token over loopback HTTP; load average "
                   f"{os.getloadavg()[0]:.1f} at the end")
    return [Result(key="P9", name=f"Dashboard page render with {n // 1000}k briefs stored (slowest page p99)",
                   figure=f"{p99[worst]:.1f} ms ({worst})", baseline="—", ratio="—", target=f"p99 < {TARGET_MS:.0f} ms",
                   passed=all(v < TARGET_MS for v in p99.values()), details=details,
                   data={"p50_ms": p50, "p99_ms": p99, "briefs": n, "rounds": rounds})]


def main(argv: list[str] | None = None) -> int:
    from bench.report import render

    p = argparse.ArgumentParser(prog="python -m bench.p9_dashboard", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True, help="Markdown report to write (e.g. /tmp/p9.md)")
    p.add_argument("--briefs", type=int, default=100_000, help="briefs stored (default 100000)")
    p.add_argument("--rounds", type=int, default=60, help="requests per page (default 60)")
    p.add_argument("--workdir", type=Path, help="keep the database here (default: a temp dir)")
    args = p.parse_args(argv)
    results = run(args.briefs, args.rounds, args.workdir)
    meta = {"machine": machine(), "when": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "command": "python -m bench.p9_dashboard", "quick": args.briefs < 100_000, "timings": {}}
    args.out.write_text(render(results, meta), encoding="utf-8")
    for r in results:
        print(f"{r.key} {r.verdict} {r.figure}")
        for line in r.details:
            print("  " + line)
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
