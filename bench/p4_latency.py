"""P4 latency: an item appears in a feed → its brief lands in (fake) Slack.

`briefbot run` runs as a subprocess on a 60 s poll interval with a 0-latency fake LLM and the
loopback Slack fake (chat.postMessage arrival times recorded). Items appear at random times
during ~2.5 intervals; the feed server starts serving each one at its scheduled time.
Baseline: the poll interval itself (an item cannot be seen before the next poll).
"""

from __future__ import annotations

import json
import random
import sqlite3
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from bench.botproc import BotProcess, write_config
from bench.common import Result, percentile
from bench.corpus import FeedSpec, make_item, render_feed
from bench.fake_llm import CountingLLM
from bench.servers import FeedServer, write_manifest
from fakes.slack_api import BOT_TOKEN, FakeSlack  # noqa: E402  (tests/ on sys.path via bench.common)

CHANNEL = "C0BRIEFS1"


class TimedSlack(FakeSlack):
    """The Slack fake, also noting when each chat.postMessage arrived."""

    def __init__(self) -> None:
        super().__init__()
        self.arrivals: list[tuple[float, str]] = []

    def _m_chat_postMessage(self, params: dict):
        arrived = time.time()
        response = super()._m_chat_postMessage(params)
        self.arrivals.append((arrived, json.dumps(params, ensure_ascii=False)))
        return response


def build_timeline(n_feeds: int, n_items: int, start: float, spread: float, seed: int = 4):
    """Feeds with 3 old entries each, then n_items new on-topic items at random times in [start, start+spread]."""
    rng = random.Random(seed)
    now = datetime.fromtimestamp(start, timezone.utc)
    feeds = []
    for i in range(n_feeds):
        lang = "zh" if i % 3 == 2 else "en"
        spec = FeedSpec(index=i, path=f"/p4/feed{i}.xml", kind="atom" if i % 2 else "rss", lang=lang,
                        encoding="utf-8", items=[])
        for j in range(3):  # old history: recorded as seen on the first poll, never briefed
            spec.items.append(make_item(rng, lang, True, 900000 + i * 10 + j, f"https://p4-{i}.example",
                                        now - timedelta(hours=30 + j), f"old{i}"))
        feeds.append(spec)
    appear: dict[str, float] = {}
    timed: list[tuple[float, int, object]] = []
    for k in range(n_items):
        at = start + rng.uniform(0, spread)
        feed = feeds[k % n_feeds]
        item = make_item(rng, feed.lang, True, 5000 + k * 37, f"https://p4-{feed.index}.example",
                         datetime.fromtimestamp(int(at), timezone.utc), f"p4item{k:03d}")
        appear[item.guid] = at
        timed.append((at, feed.index, item))
    manifest = {}
    for spec in feeds:
        versions = [(0.0, render_feed(spec))]
        mine = sorted((at, it) for at, idx, it in timed if idx == spec.index)
        shown = list(spec.items)
        for at, it in mine:
            shown = [it] + shown
            versions.append((at, render_feed(spec, items=shown)))
        manifest[spec.path] = (spec.content_type, versions)
    return feeds, manifest, appear


def _seen_at(db: Path) -> dict[str, float]:
    """When the bot stored each briefed item (epoch seconds), by guid."""
    seen_at: dict[str, float] = {}
    try:
        con = sqlite3.connect(db)
        for link, seen in con.execute("select link, seen_at from items where status = 'briefed'"):
            guid = link.rsplit("/", 1)[-1].removesuffix(".html")
            ts = datetime.fromisoformat(seen)
            seen_at[guid] = (ts if ts.tzinfo else ts.replace(tzinfo=timezone.utc)).timestamp()
        con.close()
    except sqlite3.Error:
        pass
    return seen_at


def run(interval: int = 60, n_items: int = 24, n_feeds: int = 6, cycles: float = 2.5, warmup: float = 8.0,
        spread: float | None = None, workdir: Path | None = None, log=print) -> list[Result]:
    """`warmup`: seconds before the first item appears (the bot's first, quiet poll of old history
    happens meanwhile); `spread`: seconds over which items appear (default interval × cycles)."""
    work = Path(workdir or tempfile.mkdtemp(prefix="briefbot-bench-p4-"))
    start = time.time() + warmup
    spread = interval * cycles if spread is None else spread
    feeds, manifest, appear = build_timeline(n_feeds, n_items, start, spread)
    write_manifest(work / "feeds", manifest)
    with FeedServer(work / "feeds", hosts=n_feeds) as server, CountingLLM() as llm, TimedSlack() as slack:
        config = write_config(work / "feeds.yaml",
                              [{"name": f"p4feed{s.index}", "url": server.url(s.path, s.index), "every": f"{interval}s"}
                               for s in feeds],
                              [{"name": "all", "to": [f"slack:{CHANNEL}"]}])
        db = work / "p4.db"
        env = {"DATABASE_URL": f"sqlite:///{db}", "OPENAI_BASE_URL": llm.base_url, "OPENAI_API_KEY": "bench-key",
               "BRIEFBOT_MODEL": "fake-mini", "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_API_BASE_URL": slack.api_url}
        bot = BotProcess(config, env, work / "p4-bot.log").start()
        deadline = start + spread + 2 * interval + 15
        log(f"P4: briefbot run, {interval}s interval, {n_items} items appearing over {spread:.0f}s "
            f"(≈{deadline - time.time():.0f}s) …")
        try:
            while time.time() < deadline and bot.alive():
                if len(slack.arrivals) >= n_items:
                    break
                time.sleep(0.5)
        finally:
            code = bot.stop()
    posted: dict[str, float] = {}
    for arrived, text in slack.arrivals:
        for guid in appear:
            if f"/{guid}.html" in text and guid not in posted:
                posted[guid] = arrived
    seen_at = _seen_at(db)
    latencies = sorted(posted[g] - appear[g] for g in posted)
    pipeline = sorted(posted[g] - seen_at[g] for g in posted if g in seen_at)
    p50, p95, worst = percentile(latencies, 50), percentile(latencies, 95), max(latencies or [float("nan")])
    target = interval + 2
    missing = sorted(set(appear) - set(posted))
    details = [
        f"{len(posted)}/{n_items} items posted over {n_feeds} feeds (EN and ZH, RSS and Atom); LLM calls: {llm.calls}; "
        f"Slack messages: {len(slack.arrivals)}; bot exit code {code}",
        f"appear → Slack: p50 {p50:.1f} s, p95 {p95:.1f} s, max {worst:.1f} s, min {min(latencies or [0]):.1f} s",
        "of which item stored → Slack (fetch done, LLM + store + outbox + chat.postMessage): "
        f"p50 {percentile(pipeline, 50) * 1000:.0f} ms, max {max(pipeline or [0]) * 1000:.0f} ms; "
        "the rest is waiting for the next poll",
    ]
    if missing:
        details.append(f"not posted: {missing[:5]}{' …' if len(missing) > 5 else ''}; bot log tail: "
                       f"{bot.log_tail(600)!r}")
    return [Result(
        key="P4", name=f"P4 latency item → Slack, {interval} s interval",
        figure=f"p50 {p50:.1f} s, p95 {p95:.1f} s, max {worst:.1f} s",
        baseline=f"poll interval {interval} s",
        ratio=f"p95 = {p95 / interval:.2f} × interval",
        target=f"p95 ≤ interval + 2 s ({target} s), all items posted",
        passed=bool(latencies) and p95 <= target and not missing,
        details=details,
        data={"latencies": latencies, "pipeline": pipeline, "missing": missing, "interval": interval})]


if __name__ == "__main__":
    import sys

    interval = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    for res in run(interval=interval, n_items=int(sys.argv[2]) if len(sys.argv) > 2 else 20, cycles=1.5):
        print(res.key, res.figure, "|", res.baseline, "|", res.ratio, res.verdict)
        for d in res.details:
            print("   ", d)
