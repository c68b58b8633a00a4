"""P6 peak memory of `briefbot run` with N feeds over several poll cycles.

The subprocess polls N feeds × M items (first cycle cold, later cycles mostly 304, with 10% of
the feeds gaining a new item every cycle) and delivers to a jsonl target. The bot is a process
tree (the bot and its feed-parser worker): their Pss (pages
shared between them counted once) is summed every 250 ms and the peak is the figure; the bot
process's own VmHWM (the kernel's peak resident set) is reported beside it. Baseline: the peak RSS
of a bare `python -c "import bot.cli"`.
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

TARGET_MIB = 100  # the bot and its feed-parser worker together


def _manifest(feeds: list, items: int, interval: int, duration: float, start: float) -> dict:
    """Every feed's versions: a tenth of the feeds publish one more item every interval."""
    rng = random.Random(6)
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
    return manifest


def run(n_feeds: int = 1000, items: int = 20, interval: int = 30, duration: float = 150.0, hosts: int = 50,
        workdir: Path | None = None, log=print) -> list[Result]:
    work = Path(workdir or tempfile.mkdtemp(prefix="briefbot-bench-p6-"))
    feeds = make_corpus(n_feeds, items, seed=6)
    write_manifest(work / "feeds", _manifest(feeds, items, interval, duration, start=time.time() + 5))
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
    # The figure: the memory the bot holds, bot process and its parser worker together — the peak
    # of their summed Pss (shared pages split between them), sampled every 250 ms.
    peak_kb = max([pss for _t, pss, _own in bot.samples] or [0])
    base_kb = baseline["VmHWM"]
    delivered = 0
    out = work / "out" / "briefs.jsonl"
    if out.exists():
        delivered = sum(1 for _ in out.open(encoding="utf-8"))
    end = bot.samples[-1] if bot.samples else (0, 0, 0)
    first_cycle = [pss for t, pss, _own in bot.samples if t <= interval]
    status = bot.final_status
    details = [
        f"{n_feeds} feeds × {items} items, {interval} s interval, {duration:.0f} s ≈ {duration / interval:.0f} cycles; "
        f"feed server saw {stats['requests']} requests ({stats['ok']} × 200, {stats['not_modified']} × 304); "
        f"{delivered} briefs delivered to jsonl; bot CPU {cpu:.1f} s (with its worker); still running at the end: "
        f"{alive}; exit {code}",
        f"{status.get('processes', 1)} processes (the bot and its feed-parser worker): peak summed Pss {peak_kb / 1024:.1f} MiB (sampled every 250 ms), during the first (cold) cycle "
        f"{max(first_cycle or [0]) / 1024:.1f} MiB, at the end {end[1] / 1024:.1f} MiB; the bot process alone: "
        f"VmHWM {status.get('own_VmHWM', 0) / 1024:.1f} MiB (kernel-tracked peak), VmRSS at the end "
        f"{end[2] / 1024:.1f} MiB; summed VmHWM of all {status.get('processes', 1)} {status.get('VmHWM', 0) / 1024:.1f} "
        f"MiB (counts shared pages once per process: an upper bound); bare `import bot.cli` {base_kb / 1024:.1f} MiB",
    ]
    if not alive:
        details.append(f"bot log tail: {bot.log_tail(800)!r}")
    return [Result(
        key="P6", name=f"P6 peak memory of `run`, {n_feeds} feeds, several cycles",
        figure=f"{peak_kb / 1024:.1f} MiB (bot + parser worker, Pss)",
        baseline=f"{base_kb / 1024:.1f} MiB (import bot.cli)",
        ratio=f"{peak_kb / max(1, base_kb):.1f}× the bare import (+{(peak_kb - base_kb) / 1024:.1f} MiB)",
        target=f"≤ {TARGET_MIB} MiB", passed=alive and 0 < peak_kb <= TARGET_MIB * 1024, details=details,
        data={"peak_kb": peak_kb, "baseline_kb": base_kb, "samples": bot.samples[::8], "requests": stats}),
    ]


if __name__ == "__main__":
    import sys

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    for res in run(n_feeds=n, duration=float(sys.argv[2]) if len(sys.argv) > 2 else 70):
        print(res.key, res.figure, "|", res.baseline, "|", res.ratio, res.verdict)
        for d in res.details:
            print("   ", d)
