"""P1 cold poll and P2 warm (304) re-poll of N feeds × M items.

Baseline for P1: what a user would write first — a sequential `feedparser.parse(url)` loop.
briefbot: its poller's `poll_all()` over a fresh SQLite database (extractive, no delivery
targets), i.e. fetch + parse + identify + topic filter + story matching + briefs + storage.

Run with 0 ms server latency (loopback, pure CPU: the bound is the bot's own CPU per feed), with a
publisher-like latency (default 100 ms per response), which is what a real poll waits on, and
optionally with a sweep of further latencies (`sweep_ms`): a distant publisher over TLS costs
300–800 ms per fresh connection, which the naive loop pays feed after feed.
"""

from __future__ import annotations

import asyncio
import cProfile
import io
import logging
import os
import pstats
import re
import tempfile
import time
from pathlib import Path

from bench.botproc import descendants, process_cpu_seconds
from bench.common import REPO, Result, make_env, make_settings
from bench.corpus import corpus_note, make_corpus, render_feed
from bench.servers import FeedServer, write_manifest


TARGET = 15.0  # the cold poll at the headline latency, this many times faster than the naive loop


def cpu_floor_per_feed(cold: dict, n_feeds: int) -> float:
    """CPU seconds per feed of the busier of the event loop and the parser worker: a cold poll cannot
    finish sooner, however many fetches overlap."""
    return max(cold["main_cpu"], cold["cpu"] - cold["main_cpu"]) / n_feeds


def naive_poll(urls: list[str]) -> tuple[float, float, int]:
    """The baseline: one feed after another with feedparser's own HTTP. (wall s, cpu s, entries)."""
    import feedparser

    entries = 0
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for url in urls:
        entries += len(feedparser.parse(url).entries)
    return time.perf_counter() - wall0, time.process_time() - cpu0, entries


def _bot_cpu(exclude: set[int]) -> float:
    """CPU seconds of this process plus its child processes (the bot's feed-parser workers), less
    the `exclude`d ones (the feed server)."""
    return time.process_time() + sum(process_cpu_seconds(pid) for pid in descendants(os.getpid())
                                     if pid not in exclude)


async def _briefbot_polls(settings, env, rounds: int, profile_to: Path | None = None,
                          exclude: set[int] = frozenset()) -> list[dict]:
    from bot.app.container import build_app, close_app, make_poller, settle_heap

    setup0 = time.perf_counter()
    app = build_app(settings, env)
    settle_heap()
    setup = time.perf_counter() - setup0
    poller = make_poller(app)
    out = []
    try:
        for n in range(rounds):
            if n == 2:
                # The third round re-polls over fresh connections, as a poll every 10 minutes does
                # (keep-alive lasts 30 s): each 304 then also pays its TCP connect.
                from bot.ingest.fetch import Fetcher

                await app.fetcher.aclose()
                app.fetcher = Fetcher(settings.fetch, allow_private=env.allow_private_urls)
                poller = make_poller(app)
                poller.fetcher = app.fetcher
            profiler = cProfile.Profile() if (profile_to and n == 0) else None
            wall0, cpu0, main0 = time.perf_counter(), _bot_cpu(exclude), time.process_time()
            if profiler:
                profiler.enable()
            reports = await poller.poll_all(force=True)
            if profiler:
                profiler.disable()
            wall, cpu = time.perf_counter() - wall0, _bot_cpu(exclude) - cpu0
            main_cpu = time.process_time() - main0
            outcomes: dict[str, int] = {}
            for r in reports:
                outcomes[r.outcome] = outcomes.get(r.outcome, 0) + 1
            out.append({"wall": wall, "cpu": cpu, "outcomes": outcomes, "setup": setup, "main_cpu": main_cpu,
                        "briefs": sum(len(r.new_briefs) for r in reports),
                        "merged": sum(r.merged for r in reports),
                        "irrelevant": sum(r.irrelevant for r in reports), "old": sum(r.old for r in reports),
                        "errors": [r.error for r in reports if r.outcome == "error"][:3]})
            if profiler:
                stream = io.StringIO()
                stats = pstats.Stats(profiler, stream=stream)
                stats.sort_stats("tottime").print_stats(25)
                stats.sort_stats("cumulative").print_stats(40)
                profile_to.write_text(stream.getvalue())
                out[-1]["profile"] = str(profile_to)
                out[-1]["hot"] = _hot_spots(profiler)
                out[-1]["categories"] = _categories(profiler)
    finally:
        await close_app(app)
        app.store.close()
    return out


def _shown_path(filename: str) -> str:
    """A profiled file's path from the repository, site-packages or the standard library: the same on
    every machine."""
    if "site-packages/" in filename:
        return filename.split("site-packages/")[-1]
    repo = f"{REPO}/"
    if filename.startswith(repo):
        return filename[len(repo):]
    return re.sub(r".*/lib/python3\.\d+/", "", filename)


def _hot_spots(profiler: cProfile.Profile, top: int = 8) -> list[tuple[str, float, float]]:
    """(function, own seconds, share of total) of the functions that cost most themselves."""
    stats = pstats.Stats(profiler)
    total = sum(v[2] for v in stats.stats.values()) or 1.0
    rows = sorted(stats.stats.items(), key=lambda kv: kv[1][2], reverse=True)[:top]
    out = []
    for (filename, line, func), v in rows:
        short = _shown_path(filename)
        out.append((f"{short}:{line}({func})", v[2], v[2] / total))
    return out


CATEGORIES = [
    # (label, substrings of the code's file path); first match wins. Own time only (tottime).
    ("feed parsing (feedparser, expat, HTML→text)", ("feedparser/", "xml/sax", "html/parser", "bot/ingest/parse.py",
                                                     "sgmllib", "expat", "bot/analyse/text.py", "bot/ingest/", "lxml",
                                                     "bot/ingest/fastpath.py", "bot/pipeline/parser_pool.py")),
    ("database (SQLAlchemy, sqlite3, JSON columns)", ("sqlalchemy/", "sqlite3", "bot/store/", "json/")),
    ("network (aiohttp, asyncio, sockets)", ("aiohttp", "yarl", "multidict", "aiohappyeyeballs", "propcache",
                                            "asyncio/", "socket", "ssl", "selectors", "bot/ingest/fetch.py",
                                            "bot/ingest/netguard.py")),
    ("story matching, topics, figures, briefs", ("bot/analyse/", "bot/pipeline/facts.py",
                                                 "bot/summarise/", "bot/pipeline/", "pydantic")),
]


def _categories(profiler: cProfile.Profile) -> dict[str, float]:
    """Own CPU time by layer. C builtins (regex, str methods) go to whoever calls them most."""
    stats = pstats.Stats(profiler)
    out: dict[str, float] = {label: 0.0 for label, _ in CATEGORIES}
    out["other"] = 0.0
    for (filename, _line, func), (_cc, _nc, tottime, _ct, callers) in stats.stats.items():
        where = filename
        if filename == "~" and callers:
            # A builtin: attribute it to its heaviest caller's file.
            where = max(callers.items(), key=lambda kv: kv[1][2])[0][0]
        label = next((lab for lab, keys in CATEGORIES if any(k in where for k in keys)), "other")
        out[label] += tottime
    return out


def _measure_latency(server: FeedServer, urls: list[str], settings, latency: float, db: Path, log) -> dict:
    """Naive loop, then briefbot (cold; at 0 ms also two 304 re-polls), at one publisher latency."""
    server.control(latency_ms=latency, reset=True)
    log(f"P1 latency {latency:g} ms: naive sequential feedparser loop over {len(urls)} feeds …")
    server_cpu0 = server.cpu_seconds()
    n_wall, n_cpu, n_entries = naive_poll(urls)
    naive_server_cpu = server.cpu_seconds() - server_cpu0
    log(f"P1 latency {latency:g} ms: briefbot poll_all (cold{', then warm 304' if latency == 0 else ''}) …")
    server.control(reset=True)
    server_cpu0 = server.cpu_seconds()
    polls = asyncio.run(_briefbot_polls(settings, make_env(f"sqlite:///{db}"), 3 if latency == 0 else 1,
                                        exclude={server.pid}))
    run = {"naive": {"wall": n_wall, "cpu": n_cpu, "entries": n_entries, "server_cpu": naive_server_cpu},
           "cold": polls[0], "warm_kept": polls[1] if len(polls) > 1 else None,
           "warm": polls[2] if len(polls) > 2 else None,
           "server": server.stats(), "server_cpu": server.cpu_seconds() - server_cpu0}
    log(f"   naive {n_wall:.2f}s, briefbot cold {polls[0]['wall']:.2f}s"
        + (f", warm {polls[1]['wall']:.3f}s / {polls[2]['wall']:.3f}s (kept / fresh connections)"
           if len(polls) > 2 else ""))
    return run


def _profile(server: FeedServer, feed_cfg: list[dict], work: Path, log) -> dict:
    log(f"P1 profile: cProfile of a cold poll of {len(feed_cfg)} feeds (0 ms latency) …")
    server.control(latency_ms=0, reset=True)
    settings = make_settings(feed_cfg, source_dir=work)
    prof = asyncio.run(_briefbot_polls(settings, make_env(f"sqlite:///{work / 'p1-profile.db'}"), 1,
                                       profile_to=work / "p1-profile.txt", exclude={server.pid}))
    return {"top": prof[0].get("hot"), "categories": prof[0].get("categories"),
            "feeds": len(settings.feeds), "file": str(work / "p1-profile.txt")}


def _cold_result(key: str, latency: float, r: dict, n_feeds: int, note: str, cpu_floor: float,
                 naive_per_feed0: float) -> Result:
    naive, cold = r["naive"], r["cold"]
    speedup = naive["wall"] / cold["wall"]
    label = f"cold poll, {latency:g} ms publisher latency" if latency else "cold poll, 0 ms latency (CPU bound)"
    details = [
        note,
        f"naive loop: {naive['wall']:.2f} s wall, {naive['cpu']:.2f} s CPU, {naive['entries']} entries parsed; "
        f"server CPU {naive['server_cpu']:.2f} s",
        f"briefbot: {cold['wall']:.2f} s wall, {cold['cpu']:.2f} s CPU "
        f"({cold['cpu'] / n_feeds * 1000:.1f} ms CPU/feed: event loop {cold['main_cpu'] / n_feeds * 1000:.1f} ms, "
        f"feed-parser worker process {(cold['cpu'] - cold['main_cpu']) / n_feeds * 1000:.1f} ms), "
        f"outcomes {cold['outcomes']}; "
        f"{cold['briefs']} briefs, {cold['merged']} merged into stories, {cold['irrelevant']} off-topic; "
        f"setup (schema + {n_feeds} feed rows) {cold['setup']:.2f} s not included; "
        f"server CPU {r['server_cpu']:.2f} s (not the bottleneck)",
    ]
    if latency:
        # Wall time cannot go below the busier process's CPU, whatever the concurrency; the naive
        # loop pays latency + its own parse per feed, one after another.
        details.append(f"bound: briefbot ≥ the cold CPU of its busier process ({cpu_floor * 1000:.1f} ms/feed × "
                       f"{n_feeds} = {cpu_floor * n_feeds:.1f} s at 0 ms); naive ≈ {n_feeds} × ({latency:g} ms + "
                       f"{naive_per_feed0 * 1000:.1f} ms); so the ratio is at most "
                       f"{(latency / 1000 + naive_per_feed0) / cpu_floor:.1f}× at this latency")
    if cold["errors"]:
        details.append(f"errors: {cold['errors']}")
    return Result(
        key=key, name=f"P1 {label}", figure=f"{cold['wall']:.2f} s", baseline=f"{naive['wall']:.2f} s (naive)",
        ratio=f"{speedup:.1f}× faster" if speedup >= 1 else f"{1 / speedup:.1f}× slower",
        target=f"≥ {TARGET:g}× faster" if latency else "— (shows the CPU bound)",
        passed=(speedup >= TARGET) if latency else None, details=details,
        data={"latency_ms": latency, "cpu_floor_per_feed": cpu_floor, "naive_per_feed0": naive_per_feed0,
              **{k: v for k, v in r.items() if k not in ("warm", "warm_kept")}})


def _warm_result(r0: dict, n_feeds: int) -> Result:
    warm, kept, cold0, stats = r0["warm"], r0["warm_kept"], r0["cold"], r0["server"]
    cpu_per_feed = warm["cpu"] / n_feeds * 1000
    return Result(
        key="P2", name="P2 warm re-poll, all feeds 304",
        figure=f"{warm['wall']:.2f} s wall, {cpu_per_feed:.2f} ms CPU/feed",
        baseline=f"cold: {cold0['wall']:.2f} s, {cold0['cpu'] / n_feeds * 1000:.1f} ms CPU/feed",
        ratio=f"{cold0['wall'] / warm['wall']:.1f}× faster than cold",
        target="< 2 s wall and < 1 ms CPU/feed",
        passed=warm["wall"] < 2.0 and cpu_per_feed < 1.0,
        details=[f"{n_feeds} feeds, outcomes {warm['outcomes']}; server answered {stats['not_modified']} × 304 "
                 f"of {stats['requests']} requests over the three rounds; 0 ms latency; CPU of the process and "
                 f"its feed-parser worker (time.process_time() + /proc)",
                 f"figure: each 304 over a fresh connection, as with a 10-minute interval (keep-alive is 30 s); "
                 f"re-polled at once over kept-alive connections: {kept['wall']:.2f} s wall, "
                 f"{kept['cpu'] / n_feeds * 1000:.2f} ms CPU/feed"],
        data={"warm": warm, "warm_kept": kept, "cold": cold0})


def run(n_feeds: int = 1000, items: int = 20, latency_ms: float = 100.0, hosts: int = 50,
        profile: bool = True, profile_feeds: int = 200, workdir: Path | None = None, log=print,
        sweep_ms: tuple[float, ...] = ()) -> list[Result]:
    logging.getLogger("briefbot").setLevel(logging.ERROR)
    work = Path(workdir or tempfile.mkdtemp(prefix="briefbot-bench-p1-"))
    feeds = make_corpus(n_feeds, items)
    bodies = {f.path: render_feed(f) for f in feeds}
    write_manifest(work / "feeds", {f.path: (f.content_type, [(0.0, bodies[f.path])]) for f in feeds})
    relevant = sum(it.relevant for f in feeds for it in f.items)
    runs: dict[float, dict] = {}
    hot = None
    with FeedServer(work / "feeds", hosts=hosts, latency_ms=0) as server:
        urls = [server.url(f.path, f.index) for f in feeds]
        feed_cfg = [{"name": f.name, "url": u, "every": "10m"} for f, u in zip(feeds, urls)]
        settings = make_settings(feed_cfg, source_dir=work)
        for latency in [0.0] + sorted({float(x) for x in (latency_ms, *sweep_ms) if x and x > 0}):
            runs[latency] = _measure_latency(server, urls, settings, latency, work / f"p1-{int(latency)}ms.db", log)
        if profile:
            # A fifth of the feeds is enough for the shape of the profile (and keeps the bench short).
            hot = _profile(server, feed_cfg[:max(1, min(n_feeds, profile_feeds))], work, log)
    note = (f"{n_feeds} feeds × {items} items ({n_feeds * items} entries, {relevant} on-topic), "
            f"{corpus_note(feeds)}, {sum(map(len, bodies.values())) / 1e6:.1f} MB, on {hosts} loopback hosts; "
            "server in its own process")
    cpu_floor = cpu_floor_per_feed(runs[0.0]["cold"], n_feeds)
    naive_per_feed0 = runs[0.0]["naive"]["wall"] / n_feeds
    results = [_cold_result("P1-cpu" if not lat else ("P1" if lat == latency_ms else f"P1-{lat:g}ms"), lat, r,
                            n_feeds, note, cpu_floor, naive_per_feed0) for lat, r in runs.items()]
    results.append(_warm_result(runs[0.0], n_feeds))
    if hot:
        for r in results:
            r.data["profile"] = hot
    return results


if __name__ == "__main__":
    import sys

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    for res in run(n_feeds=n, items=20, latency_ms=float(sys.argv[2]) if len(sys.argv) > 2 else 100):
        print(res.key, res.figure, res.baseline, res.ratio, res.verdict)
        for d in res.details:
            print("   ", d)
    if res.data.get("profile"):
        print("profile categories:", res.data["profile"]["categories"])
