"""P6 peak RSS of `briefbot run` with N feeds over several poll cycles.

The subprocess polls N feeds × M items (first cycle cold, later cycles mostly 304, with 10% of
the feeds gaining a new item every cycle) and delivers to a jsonl target. VmHWM (the kernel's
peak resident set) is read from /proc/PID/status before shutdown; VmRSS is sampled every
250 ms. Baseline: the peak RSS of a bare `python -c "import bot.cli"`.
"""

from __future__ import annotations

import random
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from bench.botproc import BotProcess, bare_import_rss, write_config
from bench.common import Result
from bench.corpus import make_corpus, make_item, render_feed
from bench.servers import FeedServer, write_manifest


def run(n_feeds: int = 1000, items: int = 20, interval: int = 30, duration: float = 150.0, hosts: int = 50,
        workdir: Path | None = None, log=print) -> list[Result]:
    work = Path(workdir or tempfile.mkdtemp(prefix="briefbot-bench-p6-"))
    feeds = make_corpus(n_feeds, items, seed=6)
    rng = random.Random(6)
    start = time.time() + 5
    manifest = {}
    for f in feeds:
        versions = [(0.0, render_feed(f))]
        if f.index % 10 == 0:  # a tenth of the feeds publish one more item every interval
            shown = list(f.items)
            for k in range(1, int(duration // interval) + 1):
                at = start + k * interval - interval / 2
                new = make_item(rng, f.lang, rng.random() < 0.3, 700000 + f.index * 100 + k,
                                f"https://p6-{f.index}.example", datetime.fromtimestamp(int(at), timezone.utc),
                                f"{f.name}-new")
                shown = [new] + shown[:items - 1]
                versions.append((at, render_feed(f, items=shown)))
        manifest[f.path] = (f.content_type, versions)
    write_manifest(work / "feeds", manifest)
    baseline = bare_import_rss()
    with FeedServer(work / "feeds", hosts=hosts) as server:
        config = write_config(work / "feeds.yaml",
                              [{"name": f.name, "url": server.url(f.path, f.index), "every": f"{interval}s"}
                               for f in feeds],
                              [{"name": "all", "to": ["jsonl:out/briefs.jsonl"]}])
        bot = BotProcess(config, {"DATABASE_URL": f"sqlite:///{work / 'p6.db'}"}, work / "p6-bot.log").start()
        log(f"P6: briefbot run with {n_feeds} feeds, {interval}s interval, for {duration:.0f}s …")
        try:
            while time.monotonic() - bot.started < duration and bot.alive():
                time.sleep(1)
            cpu = bot.cpu_seconds() if bot.alive() else float("nan")
            alive = bot.alive()
        finally:
            code = bot.stop()
        stats = server.stats()
    peak_kb = bot.final_status.get("VmHWM", 0)
    base_kb = baseline["VmHWM"]
    delivered = 0
    out = work / "out" / "briefs.jsonl"
    if out.exists():
        delivered = sum(1 for _ in out.open(encoding="utf-8"))
    rss_end = bot.samples[-1][1] if bot.samples else 0
    first_cycle = [kb for t, kb in bot.samples if t <= interval]
    details = [
        f"{n_feeds} feeds × {items} items, {interval} s interval, {duration:.0f} s ≈ {duration / interval:.0f} cycles; "
        f"feed server saw {stats['requests']} requests ({stats['ok']} × 200, {stats['not_modified']} × 304); "
        f"{delivered} briefs delivered to jsonl; bot CPU {cpu:.1f} s; still running at the end: {alive}; exit {code}",
        f"process tree of {bot.final_status.get('processes', 1)} (bot + feed-parser worker + helpers), summed: "
        f"VmHWM {peak_kb / 1024:.1f} MiB (sum of each process's peak, an upper bound), VmRSS at the end {rss_end / 1024:.1f} MiB, "
        f"peak sampled tree VmRSS {max([kb for _t, kb in bot.samples] or [0]) / 1024:.1f} MiB, "
        f"during the first (cold) cycle {max(first_cycle or [0]) / 1024:.1f} MiB; "
        f"bare `import bot.cli` {base_kb / 1024:.1f} MiB",
    ]
    if not alive:
        details.append(f"bot log tail: {bot.log_tail(800)!r}")
    return [Result(
        key="P6", name=f"P6 peak RSS of `run`, {n_feeds} feeds, several cycles",
        figure=f"{peak_kb / 1024:.1f} MiB", baseline=f"{base_kb / 1024:.1f} MiB (import bot.cli)",
        ratio=f"{peak_kb / max(1, base_kb):.1f}× the bare import (+{(peak_kb - base_kb) / 1024:.1f} MiB)",
        target="≤ 150 MB", passed=alive and 0 < peak_kb * 1024 <= 150e6, details=details,
        data={"peak_kb": peak_kb, "baseline_kb": base_kb, "samples": bot.samples[::8], "requests": stats}),
    ]


if __name__ == "__main__":
    import sys

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    for res in run(n_feeds=n, duration=float(sys.argv[2]) if len(sys.argv) > 2 else 70):
        print(res.key, res.figure, "|", res.baseline, "|", res.ratio, res.verdict)
        for d in res.details:
            print("   ", d)
