"""FP: what each fast path of the cold poll saves, and what each removed one cost to remove.

A fast path stays only where it saves at least 10 % of a cold poll's CPU (or, for the parser pool,
where it is needed for a guarantee). Measured here on the clean cold-poll corpus (bench/corpus.py):

Kept, measured in this tree by switching the fast path off for the measurement:
* the lxml reader (bot/ingest/fastpath.py): the worker's CPU per feed with it, and with every feed
  read by feedparser instead;
* the start-position scans of bot/analyse/numbers (scan.core_matches, dates.date_starts): the
  worker's CPU with them, and with CORE_RE and each date pattern run over the whole text instead;
* the parser pool (bot/pipeline/parser_pool.py): the event loop's CPU per feed to hand every body
  to one worker process and take its answer back, against concurrent.futures.ProcessPoolExecutor
  with one worker (kept for its fault guarantee: a dying worker fails only its own document).

Removed, measured against the code as it was before the removal (`git archive BEFORE_REMOVAL bot`,
run in a process of its own by bench/fastpath_probe.py) on the same inputs, recorded from this
tree's parse of the corpus: the regex HTML tokenizer (now lxml.html), the boilerplate checks'
character-set prefilters, the item identity shortcuts, join_url (now urljoin itself), and the
story index's prefix filter (a cold poll's time in the story index, each tree's own index).

"Share" is the CPU a fast path saves as a share of the cold poll's CPU without it (event loop and
worker together, from P1-cpu of the same run when it ran, else measured here at 0 ms).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import pickle
import subprocess
import sys
import tarfile
import tempfile
import time
from contextlib import contextmanager
from io import BytesIO
from pathlib import Path

from bench.common import REPO, Result, make_settings
from bench.corpus import make_corpus, render_feed

BEFORE_REMOVAL = "492c626"  # the last commit with every removed fast path in place
KEEP_SHARE = 0.10  # a fast path stays when it saves at least this share of a cold poll's CPU


def _jobs(n_feeds: int, items: int) -> list[tuple[bytes, str, str]]:
    feeds = make_corpus(n_feeds, items)
    return [(render_feed(f), f.content_type, f"http://h{f.index % 50}.bench.example{f.path}") for f in feeds]


def _matcher():
    from bot.analyse.topics import TopicMatcher

    return TopicMatcher(make_settings([{"name": "x", "url": "http://x.example/feed", "every": "10m"}]))


def worker_cpu(jobs: list, matcher, repeat: int = 2) -> float:
    """CPU seconds of the parser worker's job (parse + entry facts) over every body, best of `repeat`."""
    from bot.pipeline.parser_worker import parse_in_worker

    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        for body, content_type, url in jobs:
            parse_in_worker(body, content_type, url, matcher)
        best = min(best, time.process_time() - started)
    return best


@contextmanager
def _replaced(name: str, original, replacement):
    """`replacement` wherever a loaded bot module holds `original` under `name`, for the block."""
    holders = [m for k, m in list(sys.modules.items())
               if k.split(".")[0] in ("bot", "urllib") and getattr(m, name, None) is original]
    for module in holders:
        setattr(module, name, replacement)
    try:
        yield
    finally:
        for module in holders:
            setattr(module, name, original)


@contextmanager
def _no_lxml_reader():
    from bot.ingest import fastpath

    with _replaced("parse_common_feed", fastpath.parse_common_feed, lambda *_args: None):
        yield


@contextmanager
def _no_start_scans():
    from bot.analyse.numbers import dates, scan

    with _replaced("core_matches", scan.core_matches, lambda norm, _runs, _masked: list(scan.CORE_RE.finditer(norm))), \
            _replaced("date_starts", dates.date_starts, lambda norm, _runs: {name: [0] for name, _ in dates.DATE_RES}), \
            _replaced("anchored_matches", scan.anchored_matches, lambda regex, text, _starts: regex.finditer(text)):
        yield


async def _through_pool(jobs: list, matcher, executor: bool) -> float:
    """The event loop's CPU seconds to parse every body in one worker process, 64 at a time."""
    from bot.pipeline.parser_pool import FeedParser
    from bot.pipeline.parser_worker import parse_in_worker

    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(64)
    pool = concurrent.futures.ProcessPoolExecutor(1) if executor else FeedParser(1)

    async def one(job) -> None:
        async with gate:
            if executor:
                await loop.run_in_executor(pool, parse_in_worker, *job, matcher)
            else:
                await pool.parse(*job, matcher)

    await asyncio.gather(*(one(j) for j in jobs[:64]))  # start-up (imports, first jobs) not counted
    started = time.process_time()
    await asyncio.gather(*(one(j) for j in jobs))
    spent = time.process_time() - started
    pool.shutdown() if executor else pool.close()
    return spent


def _record(jobs: list, matcher) -> dict[str, list[tuple]]:
    """The arguments this tree's worker passes to the functions whose fast paths were removed."""
    from urllib import parse as urlparse

    from bot.analyse import identity
    from bot.ingest import clean

    calls: dict[str, list[tuple]] = {"html_to_text": [], "strip_boilerplate": [], "identify": [], "urljoin": []}

    def recording(key: str, fn):
        # Keyword arguments (identify's `folded`) are what this tree adds; the code before took
        # the positional ones alone.
        def wrapper(*args, **kwargs):
            calls[key].append(args)
            return fn(*args, **kwargs)
        return wrapper

    with _replaced("html_to_text", clean.html_to_text, recording("html_to_text", clean.html_to_text)), \
            _replaced("strip_boilerplate", clean.strip_boilerplate,
                      recording("strip_boilerplate", clean.strip_boilerplate)), \
            _replaced("identify", identity.identify, recording("identify", identity.identify)), \
            _replaced("urljoin", urlparse.urljoin, recording("urljoin", urlparse.urljoin)):
        worker_cpu(jobs, matcher, repeat=1)
    return calls


# (what was removed, where it ran, recorded calls, the function before, the function now)
REMOVED = [
    ("regex HTML tokenizer (now lxml.html)", "worker", "html_to_text",
     "bot.text:html_to_text", "bot.ingest.clean:html_to_text"),
    ("boilerplate checks' character-set prefilters", "worker", "strip_boilerplate",
     "bot.text:strip_boilerplate", "bot.ingest.clean:strip_boilerplate"),
    ("item identity shortcuts", "worker", "identify", "bot.items:identify", "bot.analyse.identity:identify"),
    ("join_url (now urljoin itself)", "worker", "urljoin", "bot.feeds.urls:join_url", "urllib.parse:urljoin"),
]


def _tree_before(work: Path) -> Path | None:
    """The `bot` package as it was at BEFORE_REMOVAL, extracted under `work`; None without that history."""
    tree = work / f"bot-{BEFORE_REMOVAL}"
    if not (tree / "bot").is_dir():
        archive = subprocess.run(["git", "-C", str(REPO), "archive", BEFORE_REMOVAL, "bot"], capture_output=True)
        if archive.returncode != 0:
            return None
        with tarfile.open(fileobj=BytesIO(archive.stdout)) as tar:
            tar.extractall(tree, filter="data")
    return tree


def _probe(spec: dict, work: Path) -> dict:
    path = work / "probe.json"
    path.write_text(json.dumps({"bench_root": str(REPO), **spec}))
    out = subprocess.run([sys.executable, str(REPO / "bench" / "fastpath_probe.py"), str(path)], cwd=str(work),
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"fastpath probe failed: {out.stderr[-1500:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _removed_costs(jobs: list, matcher, before: Path, work: Path, log) -> list[dict]:
    calls = _record(jobs, matcher)
    rows = []
    for label, where, key, old, new in REMOVED:
        args = work / f"{key}.pickle"
        args.write_bytes(pickle.dumps(calls[key], pickle.HIGHEST_PROTOCOL))
        log(f"FP: {label}: {len(calls[key])} calls, before and now …")
        seconds = {side: _probe({"tree": str(tree), "kind": "call", "target": target, "args": str(args)},
                                work)["seconds"] for side, tree, target in (("before", before, old), ("now", REPO, new))}
        rows.append({"label": label, "where": where, "calls": len(calls[key]), **seconds})
    return rows


def _story_index_cost(n_feeds: int, items: int, before: Path, work: Path, log) -> dict:
    """A cold poll of the corpus in each tree, timing only its story index (0 ms latency)."""
    from bench.servers import FeedServer, write_manifest

    feeds = make_corpus(n_feeds, items)
    write_manifest(work / "feeds", {f.path: (f.content_type, [(0.0, render_feed(f))]) for f in feeds})
    log(f"FP: story index, a cold poll of {n_feeds} feeds in each tree …")
    with FeedServer(work / "feeds", hosts=50) as server:
        pairs = [[f.name, server.url(f.path, f.index)] for f in feeds]
        polls = {side: _probe({"tree": str(tree), "kind": "stories", "feeds": pairs, "work": str(work),
                               "layout": "before" if side == "before" else "current"}, work)
                 for side, tree in (("before", before), ("now", REPO))}
    return {"label": "story index prefix filter (title-token pairs chosen by cost, index of stories "
                     "without figures)", "where": "event loop", "calls": n_feeds,
            "before": polls["before"]["seconds"], "now": polls["now"]["seconds"], "poll_cpu": polls["now"]["poll_cpu"]}


def _kept(jobs: list, matcher, log) -> list[dict]:
    log(f"FP: the parser worker's CPU over {len(jobs)} feeds, with each kept fast path and without …")
    with_all = worker_cpu(jobs, matcher)
    with _no_lxml_reader():
        no_reader = worker_cpu(jobs, matcher)
    with _no_start_scans():
        no_scans = worker_cpu(jobs, matcher)
    log("FP: the event loop's CPU handing the bodies to the parser pool, and to ProcessPoolExecutor …")
    pool = asyncio.run(_through_pool(jobs, matcher, executor=False))
    executor = asyncio.run(_through_pool(jobs, matcher, executor=True))
    return [
        {"label": "lxml reader for well-formed RSS / RDF / Atom (bot/ingest/fastpath.py)", "where": "worker",
         "with": with_all, "without": no_reader, "instead": "feedparser reads every feed"},
        {"label": "number and date start-position scans (bot/analyse/numbers/scan.py, dates.py)",
         "where": "worker", "with": with_all, "without": no_scans,
         "instead": "CORE_RE and each date pattern tried at every position"},
        {"label": "parser pool over pipes (bot/pipeline/parser_pool.py), kept for its fault guarantee",
         "where": "event loop", "with": pool, "without": executor,
         "instead": "concurrent.futures.ProcessPoolExecutor(1)"},
    ]


def _ms(seconds: float, n: int) -> str:
    return f"{seconds / n * 1000:+.2f}" if seconds < 0 else f"{seconds / n * 1000:.2f}"


def results_for(kept: list[dict], removed: list[dict], n: int, poll_cpu: float, poll_note: str) -> Result:
    per_feed = poll_cpu / n
    rows, shares = [], {}
    for k in kept:
        saved = (k["without"] - k["with"]) / n
        shares[k["label"]] = saved / (per_feed + saved)
        rows.append(f"kept — {k['label']}: {k['where']} {k['with'] / n * 1000:.2f} ms/feed with it, "
                    f"{k['without'] / n * 1000:.2f} without ({k['instead']}); saves {saved * 1000:.2f} ms/feed = "
                    f"{shares[k['label']]:.0%} of the cold poll's CPU without it")
    for r in removed:
        cost = (r["now"] - r["before"]) / n
        shares[r["label"]] = cost / per_feed
        rows.append(f"removed — {r['label']}: {r['where']} {r['before'] / n * 1000:.2f} ms/feed before, "
                    f"{r['now'] / n * 1000:.2f} now ({r['calls']} calls); costs {cost * 1000:+.2f} ms/feed = "
                    f"{cost / per_feed:+.1%} of the cold poll's CPU")
    reader = kept[0]
    below = [r["label"] for r in removed if shares[r["label"]] >= KEEP_SHARE]
    return Result(
        key="FP", name="Fast paths: what each kept one saves, what each removed one costs (clean corpus, per feed)",
        figure=f"lxml reader saves {shares[reader['label']]:.0%} of a cold poll's CPU",
        baseline=f"cold poll {per_feed * 1000:.1f} ms CPU/feed ({poll_note})",
        ratio="; ".join(f"{r['label'].split(' (')[0]} {(r['now'] - r['before']) / n * 1000:+.2f} ms"
                        for r in removed),
        target=f"kept ≥ {KEEP_SHARE:.0%} (or needed for a guarantee); removed < {KEEP_SHARE:.0%}",
        passed=not below and all(shares[k["label"]] >= KEEP_SHARE for k in kept[:2]),
        details=rows + ([f"removed but ≥ {KEEP_SHARE:.0%}: {', '.join(below)}"] if below else []),
        data={"kept": kept, "removed": removed, "n_feeds": n, "poll_cpu": poll_cpu, "shares": shares})


def run(n_feeds: int = 1000, items: int = 20, poll_cpu: float | None = None, workdir: Path | None = None,
        log=print) -> list[Result]:
    """`poll_cpu`: the cold poll's CPU seconds (event loop + worker) at 0 ms for these feeds, from
    P1-cpu of the same run; measured here (story index probe) when not given."""
    work = Path(workdir or tempfile.mkdtemp(prefix="briefbot-bench-fp-"))
    work.mkdir(parents=True, exist_ok=True)
    jobs, matcher = _jobs(n_feeds, items), _matcher()
    kept = _kept(jobs, matcher, log)
    before = _tree_before(work)
    removed: list[dict] = []
    note = "P1-cpu of this run"
    if before is None:
        log(f"FP: commit {BEFORE_REMOVAL} is not in this clone's history: removed fast paths not measured")
    else:
        removed = _removed_costs(jobs, matcher, before, work, log)
        stories = _story_index_cost(n_feeds, items, before, work, log)
        removed.append(stories)
        if poll_cpu is None:
            poll_cpu, note = stories["poll_cpu"], "a cold poll at 0 ms measured here"
    if poll_cpu is None:
        raise RuntimeError("no cold-poll CPU to compare with: run P1 in the same run, or keep the git history")
    return [results_for(kept, removed, n_feeds, poll_cpu, note)]


if __name__ == "__main__":
    for res in run(n_feeds=int(sys.argv[1]) if len(sys.argv) > 1 else 200):
        print(res.key, res.figure, "|", res.baseline, "|", res.ratio, res.verdict)
        for d in res.details:
            print("   ", d)
