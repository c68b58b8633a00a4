"""P7 briefbot against what users would run instead, side by side on the same loopback corpus.

Contenders (bench/alternatives.py), each in a process of its own, one after the other against the
same feed server: the naive loop (`feedparser.parse(url)` feed after feed: cold poll only), the
`reader` library (`make_reader`, `add_feed` per feed, `update_feeds(workers=16)`), and briefbot
(its poller over a fresh SQLite file, extractive, no delivery targets; the bot process and its
feed-parser worker). Each does a cold poll, then reader and briefbot poll every feed again at
once, which the server answers with 304.

Two corpora with the same items: "clean" (well-formed RSS 2.0 / Atom, correct charsets) and
"mixed" (a third of the feeds in forms a strict XML reader declines); which reader of briefbot's
(lxml or feedparser) takes each feed is measured here by calling its public `parse_feed`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from urllib.parse import urlsplit

from bench.botproc import tree_status
from bench.common import REPO, Result
from bench.corpus import FeedSpec, corpus_note, make_corpus, render_feed
from bench.servers import FeedServer, write_manifest

SIDES = ("naive", "reader", "briefbot")
CORPORA = ("clean", "mixed")
READER_LEAD_TARGET = 3.0  # briefbot's cold poll at least this many times faster than reader's


def feedparser_share(feeds: list[FeedSpec]) -> float:
    """Share of the feeds briefbot's `parse_feed` hands to feedparser (the rest it reads with lxml)."""
    import feedparser

    from bot.ingest.parse import parse_feed

    real, calls = feedparser.parse, [0]

    def counting(*args, **kwargs):
        calls[0] += 1
        return real(*args, **kwargs)

    routed = 0
    feedparser.parse = counting
    try:
        for f in feeds:
            calls[0] = 0
            parse_feed(render_feed(f), f.content_type, f"http://bench.example{f.path}")
            routed += calls[0] > 0
    finally:
        feedparser.parse = real
    return routed / (len(feeds) or 1)


def run_side(side: str, feeds: list[list[str]], work: Path, rounds: int) -> dict:
    """Run one contender in its own process; sample its process tree's Pss from outside meanwhile."""
    work.mkdir(parents=True, exist_ok=True)
    spec = work / "spec.json"
    spec.write_text(json.dumps({"side": side, "feeds": feeds, "work": str(work), "rounds": rounds}))
    peak_pss, stop = [0], threading.Event()
    with open(work / "stderr.log", "w") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "bench.alternatives", str(spec)], cwd=str(REPO),
                                stdout=subprocess.PIPE, stderr=stderr, text=True)

        def sample() -> None:
            while not stop.wait(0.25):
                peak_pss[0] = max(peak_pss[0], tree_status(proc.pid).get("Pss", 0))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            stdout, _ = proc.communicate(timeout=3600)
        finally:
            stop.set()
            sampler.join()
    if proc.returncode != 0:
        tail = (work / "stderr.log").read_text(errors="replace")[-1500:]
        raise RuntimeError(f"P7 {side} exited with {proc.returncode}: {tail}")
    return {**json.loads(stdout.strip().splitlines()[-1]), "peak_pss_kb": peak_pss[0]}


def measure_corpus(corpus: str, n_feeds: int, items: int, latency_ms: float, hosts: int, sides: tuple[str, ...],
                   work: Path, log) -> dict:
    feeds = make_corpus(n_feeds, items, seed=7, mixed=corpus == "mixed")
    write_manifest(work / "feeds", {f.path: (f.content_type, [(0.0, render_feed(f))]) for f in feeds})
    info = {"corpus": corpus, "n_feeds": n_feeds, "items": items, "latency_ms": latency_ms,
            "note": corpus_note(feeds), "feedparser_share": feedparser_share(feeds),
            "bytes": sum(len(render_feed(f)) for f in feeds), "sides": {},
            "variants": {f.path: f.variant or "clean" for f in feeds}}
    with FeedServer(work / "feeds", hosts=hosts, latency_ms=latency_ms) as server:
        pairs = [[f.name, server.url(f.path, f.index)] for f in feeds]
        for side in sides:
            log(f"P7 {corpus}: {side}, {n_feeds} feeds at {latency_ms:g} ms …")
            server.control(reset=True)
            cpu0 = server.cpu_seconds()
            out = run_side(side, pairs, work / side, rounds=1 if side == "naive" else 2)
            out["server"], out["server_cpu"] = server.stats(), server.cpu_seconds() - cpu0
            info["sides"][side] = out
            log(f"   {side}: " + ", ".join(f"{p['wall']:.2f} s wall / {p['cpu']:.2f} s CPU" for p in out["phases"])
                + f", peak {out['peak_kb'] / 1024:.0f} MiB")
    return info


def _mib(kb: float) -> str:
    return f"{kb / 1024:.0f} MiB"


def _side_line(name: str, out: dict, n: int) -> str:
    phases = out["phases"]
    text = (f"{name}: cold {phases[0]['wall']:.2f} s wall, {phases[0]['cpu']:.2f} s CPU "
            f"({phases[0]['cpu'] / n * 1000:.1f} ms/feed)")
    if len(phases) > 1:
        text += f"; 304 re-poll {phases[1]['wall']:.2f} s wall, {phases[1]['cpu'] / n * 1000:.2f} ms CPU/feed"
    extra = {k: v for k, v in phases[0].items() if k not in ("wall", "cpu")}
    text += (f"; peak {_mib(out['peak_kb'])} summed VmHWM of {out['processes']} process(es), sampled Pss "
             f"{_mib(out['peak_pss_kb'])}; setup {out['setup']:.2f} s not included; {extra}; server answered "
             f"{out['server']['ok']} × 200, {out['server']['not_modified']} × 304")
    return text


def results_for(info: dict) -> list[Result]:
    corpus, n, sides = info["corpus"], info["n_feeds"], info["sides"]
    details = [f"{n} feeds × {info['items']} items, {info['bytes'] / 1e6:.1f} MB, {info['latency_ms']:g} ms per "
               f"response; {info['note']}; briefbot's parse_feed hands {info['feedparser_share']:.0%} of the feeds "
               "to feedparser (the rest it reads with lxml)"]
    details += [_side_line(side, sides[side], n) for side in SIDES if side in sides]
    refused = (sides.get("reader") or {}).get("refused")
    if refused:
        kinds: dict[str, int] = {}
        for url in refused:
            kind = info["variants"].get(urlsplit(url).path, "?")
            kinds[kind] = kinds.get(kind, 0) + 1
        bot_ok = ((sides.get("briefbot") or {}).get("phases") or [{}])[0].get("outcomes", {}).get("ok", 0)
        details.append(f"reader gave up on {len(refused)} feeds by their form {kinds} (it refuses a document its "
                       f"XML parser had to recover); briefbot read {bot_ok} of {n} feeds")
    bot, rdr, naive = sides.get("briefbot"), sides.get("reader"), sides.get("naive")
    if not bot:
        return []
    cold, peak = bot["phases"][0], bot["peak_kb"]
    figure = f"{cold['wall']:.2f} s wall, {cold['cpu']:.2f} s CPU, {_mib(peak)}"
    baseline, ratio, lead = [], [], None
    if rdr:
        r_cold = rdr["phases"][0]
        lead = r_cold["wall"] / cold["wall"]
        baseline.append(f"reader: {r_cold['wall']:.2f} s, {r_cold['cpu']:.2f} s CPU, {_mib(rdr['peak_kb'])}")
        ratio.append(f"{lead:.1f}× faster than reader ({r_cold['cpu'] / cold['cpu']:.1f}× less CPU, "
                     f"{peak / rdr['peak_kb']:.1f}× its memory)")
    if naive:
        n_cold = naive["phases"][0]
        baseline.append(f"naive: {n_cold['wall']:.2f} s, {n_cold['cpu']:.2f} s CPU, {_mib(naive['peak_kb'])}")
        ratio.append(f"{n_cold['wall'] / cold['wall']:.1f}× faster than naive")
    out = [Result(key=f"P7-{corpus}", name=f"P7 cold poll against reader and the naive loop, {corpus} corpus",
                  figure=figure, baseline="; ".join(baseline) or "—", ratio="; ".join(ratio) or "—",
                  target=f"≥ {READER_LEAD_TARGET:g}× faster than reader",
                  passed=None if lead is None else lead >= READER_LEAD_TARGET, details=details, data=info)]
    if len(bot["phases"]) > 1:
        warm = bot["phases"][1]
        figure = f"{warm['wall']:.2f} s wall, {warm['cpu'] / n * 1000:.2f} ms CPU/feed"
        baseline = ratio = "—"
        if rdr and len(rdr["phases"]) > 1:
            r_warm = rdr["phases"][1]
            baseline = f"reader: {r_warm['wall']:.2f} s, {r_warm['cpu'] / n * 1000:.2f} ms CPU/feed"
            ratio = f"{r_warm['cpu'] / warm['cpu']:.1f}× less CPU than reader"
        out.append(Result(key=f"P7-{corpus}-304", name=f"P7 re-poll, every feed 304, {corpus} corpus",
                          figure=figure, baseline=baseline, ratio=ratio, target="—", passed=None,
                          details=[f"briefbot outcomes {warm.get('outcomes')}; see P7-{corpus} for both sides"],
                          data={"corpus": corpus}))
    return out


def run(n_feeds: int = 1000, items: int = 20, latency_ms: float = 100.0, hosts: int = 50,
        corpora: tuple[str, ...] = CORPORA, sides: tuple[str, ...] = SIDES, workdir: Path | None = None,
        log=print) -> list[Result]:
    unknown = (set(corpora) - set(CORPORA)) | (set(sides) - set(SIDES))
    if unknown:
        raise ValueError(f"unknown P7 corpus or side: {', '.join(sorted(unknown))}")
    work = Path(workdir or tempfile.mkdtemp(prefix="briefbot-bench-p7-"))
    results: list[Result] = []
    for corpus in corpora:
        info = measure_corpus(corpus, n_feeds, items, latency_ms, hosts, sides, work / corpus, log)
        results += results_for(info)
    return results


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    for res in run(n_feeds=n, latency_ms=float(sys.argv[2]) if len(sys.argv) > 2 else 100):
        print(res.key, res.figure, "|", res.baseline, "|", res.ratio, res.verdict)
        for d in res.details:
            print("   ", d)
