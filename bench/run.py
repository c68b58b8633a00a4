"""Run the briefbot benchmarks and write BENCHMARKS.md.

    .venv/bin/python -m bench.run                 # everything, full sizes (~15 min)
    .venv/bin/python -m bench.run --only P7       # one benchmark (P1 includes P2)
    .venv/bin/python -m bench.run --only FP       # what each kept fast path saves, each removed one costs
    .venv/bin/python -m bench.run --quick         # small sizes (numbers not comparable)

Everything runs against loopback servers started here (feeds, OpenAI-compatible LLM, Slack,
embedded PostgreSQL); nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

from bench.common import REPO, Result, machine
from bench.report import render

ALL = ["P1", "P2", "P3", "P4", "P5", "P6", "P7", "P8", "P9", "FP"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", default=",".join(ALL), help="comma-separated subset, e.g. P1,P3 (P1 includes P2)")
    p.add_argument("--quick", action="store_true", help="small sizes for a fast look (not the documented figures)")
    p.add_argument("--feeds", type=int, help="P1/P2/P6/P7 feed count (default 1000; quick 100)")
    p.add_argument("--items", type=int, default=20, help="items per feed (default 20)")
    p.add_argument("--latency-ms", type=float, default=100.0,
                   help="P1 and P7 publisher latency per response (default 100)")
    p.add_argument("--sweep-ms", default="",
                   help="further P1 latencies in ms, comma-separated, e.g. 300,500 (default none)")
    p.add_argument("--hosts", type=int, default=50, help="loopback hosts the feeds are spread over (default 50)")
    p.add_argument("--no-profile", action="store_true", help="skip the cProfile run of P1")
    p.add_argument("--p4-interval", type=int, help="P4 poll interval in seconds (default 60; quick 30; min 30)")
    p.add_argument("--p4-items", type=int, help="P4 items (default 24; quick 20)")
    p.add_argument("--p5-briefs", type=int, help="P5 and P9 stored briefs (default 100000; quick 20000)")
    p.add_argument("--no-pg", action="store_true", help="P5 on SQLite only")
    p.add_argument("--p6-duration", type=float, help="P6 seconds of `run` (default 150; quick 70)")
    p.add_argument("--p6-interval", type=int, default=30, help="P6 poll interval (default 30)")
    p.add_argument("--p7-corpora", default="clean,mixed", help="P7 corpora: clean, mixed or both (default both)")
    # The naive loop on the clean corpus is P1's baseline already; add "naive" for it on both corpora (+4 min).
    p.add_argument("--p7-sides", default="reader,briefbot",
                   help="P7 contenders, comma-separated: naive, reader, briefbot (default reader,briefbot)")
    p.add_argument("--out", type=Path, default=REPO / "BENCHMARKS.md", help="Markdown report (default BENCHMARKS.md)")
    p.add_argument("--json", type=Path, help="also write the raw results as JSON")
    p.add_argument("--workdir", type=Path, help="keep feeds, databases and logs here (default: a temp dir)")
    p.add_argument("--keep", type=Path, metavar="JSON",
                   help="take the benchmarks not run now from an earlier --json file (the report says which run)")
    p.add_argument("--render-only", type=Path, metavar="JSON",
                   help="re-render the report from a --json file of an earlier run (no measuring)")
    return p.parse_args(argv)


def _wanted(only: str) -> set[str]:
    wanted = {w.strip().upper() for w in only.split(",") if w.strip()}
    unknown = wanted - set(ALL)
    if unknown:
        raise SystemExit(f"unknown benchmark(s): {', '.join(sorted(unknown))}; choose from {', '.join(ALL)}")
    return wanted


def run_all(args: argparse.Namespace, log=print) -> tuple[list[Result], dict]:
    wanted = _wanted(args.only)
    quick = args.quick
    work = Path(args.workdir or tempfile.mkdtemp(prefix="briefbot-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    feeds = args.feeds or (100 if quick else 1000)
    sweep = args.sweep_ms
    results: list[Result] = []
    timings: dict[str, float] = {}

    def step(name: str, fn) -> None:
        t0 = time.perf_counter()
        try:
            results.extend(fn())
        except Exception as exc:  # one broken benchmark must not lose the others' numbers
            log(f"{name} failed: {type(exc).__name__}: {exc}")
            results.append(Result(key=name, name=f"{name} (did not complete)", figure="error", baseline="—",
                                  ratio="—", target="—", passed=False, details=[f"{type(exc).__name__}: {exc}"]))
        timings[name] = time.perf_counter() - t0

    if wanted & {"P1", "P2"}:
        from bench import p1_cold_poll

        step("P1", lambda: [r for r in p1_cold_poll.run(
            n_feeds=feeds, items=args.items, latency_ms=args.latency_ms, hosts=args.hosts,
            profile=not args.no_profile, workdir=work / "p1", log=log,
            sweep_ms=tuple(float(x) for x in sweep.split(",") if x.strip()))
            # P1's run measures P2 too (its warm re-poll); --only P2 reports just that.
            if _family(r.key) in wanted or (r.key == "P2" and "P1" in wanted)])
    if "P3" in wanted:
        from bench import p3_llm_economy

        step("P3", lambda: p3_llm_economy.run(workdir=work / "p3", log=log))
    if "P4" in wanted:
        from bench import p4_latency

        interval = args.p4_interval or (30 if quick else 60)
        step("P4", lambda: p4_latency.run(interval=interval, n_items=args.p4_items or (20 if quick else 24),
                                          cycles=1.5 if quick else 2.5, workdir=work / "p4", log=log))
    if "P5" in wanted:
        from bench import p5_query

        step("P5", lambda: p5_query.run(n=args.p5_briefs or (20_000 if quick else 100_000), postgres=not args.no_pg,
                                        workdir=work / "p5", log=log))
    if "P6" in wanted:
        from bench import p6_memory

        step("P6", lambda: p6_memory.run(n_feeds=feeds, items=args.items, interval=args.p6_interval,
                                         duration=args.p6_duration or (70 if quick else 150), hosts=args.hosts,
                                         workdir=work / "p6", log=log))
    if "P7" in wanted:
        from bench import p7_alternatives

        step("P7", lambda: p7_alternatives.run(
            n_feeds=feeds, items=args.items, latency_ms=args.latency_ms, hosts=args.hosts,
            corpora=_names(args.p7_corpora), sides=_names(args.p7_sides), workdir=work / "p7", log=log))
    if "P8" in wanted:
        from bench import p8_story_matching

        step("P8", lambda: p8_story_matching.run(n_feeds=feeds, items=args.items, log=log))
    if "P9" in wanted:
        from bench import p9_dashboard

        step("P9", lambda: p9_dashboard.run(n=args.p5_briefs or (20_000 if quick else 100_000), workdir=work / "p9",
                                            log=log))
    if "FP" in wanted:
        from bench import fastpaths

        step("FP", lambda: fastpaths.run(n_feeds=feeds, items=args.items, poll_cpu=_cold_poll_cpu(results, feeds),
                                         workdir=work / "fp", log=log))
    meta = {"machine": machine(), "when": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "command": "python -m bench.run " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
            "quick": quick, "timings": timings, "workdir": str(work)}
    return results, meta


def _cold_poll_cpu(results: list[Result], n_feeds: int) -> float | None:
    """The cold poll's CPU seconds at 0 ms (event loop + parser worker) from P1-cpu of this run."""
    cold = next((r.data.get("cold") for r in results if r.key == "P1-cpu"), None)
    return cold["cpu"] if cold and sum(cold["outcomes"].values()) == n_feeds else None


def _names(text: str) -> tuple[str, ...]:
    return tuple(x.strip().lower() for x in text.split(",") if x.strip())


def _family(key: str) -> str:
    return key.split("-", 1)[0]  # "P5-pg" -> "P5"; P1's variants and P2 come from one run of P1


def keep_earlier(results: list[Result], meta: dict, saved: dict) -> tuple[list[Result], dict]:
    """Add an earlier run's results for the benchmarks this run did not measure, labelled as such."""
    measured = {_family(r.key) for r in results}
    if "P1" in measured:
        measured.add("P2")
    kept = [Result(**r) for r in saved["results"] if _family(r["key"]) not in measured]
    for r in kept:
        r.details = r.details + [f"(from the earlier run of {saved['meta']['when']}, not re-measured)"]
    order = {f: i for i, f in enumerate(ALL)}
    merged = sorted(results + kept, key=lambda r: order.get(_family(r.key), len(order)))
    if kept:
        meta = {**meta, "kept_from": {"when": saved["meta"]["when"], "command": saved["meta"]["command"],
                                      "keys": [r.key for r in kept]}}
    return merged, meta


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.render_only:
        saved = json.loads(args.render_only.read_text(encoding="utf-8"))
        results, meta = [Result(**r) for r in saved["results"]], saved["meta"]
    else:
        results, meta = run_all(args)
        if args.keep:
            results, meta = keep_earlier(results, meta, json.loads(args.keep.read_text(encoding="utf-8")))
    text = render(results, meta)
    args.out.write_text(text, encoding="utf-8")
    if args.json:
        args.json.write_text(json.dumps({"meta": meta, "results": [asdict(r) for r in results]}, indent=2,
                                        default=str))
    print(f"\nwrote {args.out}")
    for r in results:
        print(f"{r.key:8} {r.verdict:5} {r.figure} | baseline {r.baseline} | {r.ratio}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
