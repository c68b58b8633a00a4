"""One contender of P7 polling the loopback corpus, in a process of its own so that its CPU and
memory are its own: the naive feedparser loop, the `reader` library, or briefbot.

    python -m bench.alternatives SPEC.json     # prints one JSON line with the measurements

SPEC: {"side": "naive" | "reader" | "briefbot", "feeds": [[name, url], ...], "work": DIR, "rounds": 1 | 2}.
Round 1 is the cold poll; round 2 polls every feed again at once (the server answers 304 to a
conditional GET). CPU is this process (every thread) plus its child processes (briefbot's
feed-parser workers); memory is the summed VmHWM (kernel-tracked peak RSS) of the same processes,
read before any of them exits.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
from pathlib import Path

from bench.botproc import descendants, process_cpu_seconds, proc_status

READER_WORKERS = 16


def tree_cpu() -> float:
    return time.process_time() + sum(process_cpu_seconds(pid) for pid in descendants(os.getpid()))


def tree_peak_kb() -> tuple[int, int]:
    """(summed VmHWM in kB, number of processes) of this process and its children."""
    members = [os.getpid(), *descendants(os.getpid())]
    return sum(proc_status(pid).get("VmHWM", 0) for pid in members), len(members)


def _timed(fn) -> dict:
    wall0, cpu0 = time.perf_counter(), tree_cpu()
    out = fn() or {}
    return {"wall": time.perf_counter() - wall0, "cpu": tree_cpu() - cpu0, **out}


def run_naive(feeds: list[list[str]], work: Path, rounds: int) -> dict:
    """What a user writes first: feedparser.parse(url), one feed after the other."""
    import feedparser

    def poll() -> dict:
        return {"entries": sum(len(feedparser.parse(url).entries) for _name, url in feeds)}

    phases = [_timed(poll) for _ in range(rounds)]
    return {"setup": 0.0, "phases": phases}


def run_reader(feeds: list[list[str]], work: Path, rounds: int) -> dict:
    """The `reader` library as its documentation shows it: add the feeds, update them with workers."""
    from reader import make_reader

    setup0 = time.perf_counter()
    reader = make_reader(str(work / "reader.sqlite"))
    for _name, url in feeds:
        reader.add_feed(url)
    setup = time.perf_counter() - setup0

    def poll() -> dict:
        # scheduled=False: update every feed now, as briefbot's forced poll does (reader would
        # otherwise wait for each feed's update interval before the re-poll).
        reader.update_feeds(workers=READER_WORKERS, scheduled=False)
        return {"entries": reader.get_entry_counts().total, "broken": reader.get_feed_counts().broken}

    phases = [_timed(poll) for _ in range(rounds)]
    # The feeds reader gave up on (it refuses a document its XML parser had to recover).
    refused = sorted(feed.url for feed in reader.get_feeds(broken=True))
    reader.close()
    return {"setup": setup, "phases": phases, "refused": refused}


async def _briefbot(feeds: list[list[str]], work: Path, rounds: int) -> dict:
    from bench.common import make_env, make_settings
    from bot.app.container import build_app, close_app, make_poller, settle_heap

    setup0 = time.perf_counter()
    settings = make_settings([{"name": name, "url": url, "every": "10m"} for name, url in feeds], source_dir=work)
    app = build_app(settings, make_env(f"sqlite:///{work / 'briefbot.db'}"))
    settle_heap()
    poller = make_poller(app)
    setup = time.perf_counter() - setup0
    phases = []
    try:
        for _ in range(rounds):
            wall0, cpu0 = time.perf_counter(), tree_cpu()
            reports = await poller.poll_all(force=True)
            phase = {"wall": time.perf_counter() - wall0, "cpu": tree_cpu() - cpu0, "outcomes": {}}
            for r in reports:
                phase["outcomes"][r.outcome] = phase["outcomes"].get(r.outcome, 0) + 1
            phase["briefs"] = sum(len(getattr(r, "new_briefs", ())) for r in reports)
            phase["merged"] = sum(getattr(r, "merged", 0) for r in reports)
            phase["irrelevant"] = sum(getattr(r, "irrelevant", 0) for r in reports)
            phases.append(phase)
        # Read while the parser workers are still alive: their peaks count.
        peak_kb, processes = tree_peak_kb()
    finally:
        await close_app(app)
    return {"setup": setup, "phases": phases, "peak_kb": peak_kb, "processes": processes}


def run_briefbot(feeds: list[list[str]], work: Path, rounds: int) -> dict:
    return asyncio.run(_briefbot(feeds, work, rounds))


SIDES = {"naive": run_naive, "reader": run_reader, "briefbot": run_briefbot}


def main(argv: list[str]) -> int:
    spec = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("briefbot").setLevel(logging.ERROR)
    work = Path(spec["work"])
    work.mkdir(parents=True, exist_ok=True)
    out = SIDES[spec["side"]](spec["feeds"], work, int(spec["rounds"]))
    if "peak_kb" not in out:
        out["peak_kb"], out["processes"] = tree_peak_kb()
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
