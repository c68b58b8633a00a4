"""What `briefbot`'s subcommands do, once the command line is parsed (bot.cli parses it)."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from importlib import resources
from pathlib import Path

from bot.adapters.console import render_brief_text
from bot.app.container import (App, build_app, close_app, default_registry, make_alert_check, make_dispatcher,
                               make_poller, settle_heap)
from bot.app.runner import BotRunner, install_signal_handlers
from bot.commands import CommandService, UsageError, check_words
from bot.config import Env, Settings, format_duration, load_config
from bot.digest import add_overview, build_digest, render_digest_text
from bot.samples.server import SampleFeedServer
from bot.store import Store
from bot.subscriptions import ChatConfig, merge
from bot.summarise.dialect import Dialect

log = logging.getLogger("briefbot")
# What the user asked for does not exist (an unknown topic or digest): a usage error.
EXIT_USAGE = 2


async def poll_cycle(app: App, in_file_order: bool = False) -> list:
    """One poll of every feed, then alerts and delivery. `in_file_order` polls one feed after another,
    so the outlet listed first leads a story every time (the demo shows the same briefs on every run)."""
    poller = make_poller(app)
    if in_file_order:
        reports = [await poller.poll_feed(feed, force=True) for feed in poller.settings.polled_feeds]
    else:
        reports = await poller.poll_all(force=True)
    check_alerts(app)
    dispatcher = make_dispatcher(app)
    while await dispatcher.dispatch_once():
        pass
    return reports


def check_alerts(app: App) -> None:
    """Open and close incidents as `run` does every minute: cron users run `poll --once` instead."""
    try:
        make_alert_check(app).run()
    except Exception:  # the poll's briefs still go out
        log.exception("alert check failed")


# Feeds another worker held the lease of (it is polling them), and feeds switched off after failing.
_NOT_POLLED = ("skipped", "disabled")


def summarise_reports(reports) -> str:
    """One line: how many feeds this process polled, what came of it, and which it left alone."""
    polled = [r for r in reports if r.outcome not in _NOT_POLLED]
    new = sum(len(r.new_briefs) for r in polled)
    merged = sum(r.merged for r in polled)
    errors = [r for r in polled if r.outcome == "error"]
    text = f"polled {len(polled)} feed(s): {new} new brief(s), {merged} joined an existing story"
    skipped = sum(r.outcome == "skipped" for r in reports)
    if skipped:
        text += f"; {skipped} skipped because another worker held them"
    disabled = sum(r.outcome == "disabled" for r in reports)
    if disabled:
        text += f"; {disabled} disabled (see briefbot feeds)"
    if errors:
        text += f"; {len(errors)} feed error(s): " + "; ".join(f"{r.feed}: {r.error}" for r in errors)
    return text


def every_feed_failed(reports) -> bool:
    polled = [r for r in reports if r.outcome not in _NOT_POLLED]
    return bool(polled) and all(r.outcome == "error" for r in polled)


def one_cycle(settings: Settings, env: Env, in_file_order: bool = False) -> tuple[str, bool]:
    """Build the bot, run one poll+deliver cycle, close it; returns the summary line and whether
    every feed polled failed."""
    async def go() -> tuple[str, bool]:
        app = build_app(settings, env)
        try:
            reports = await poll_cycle(app, in_file_order)
            return summarise_reports(reports), every_feed_failed(reports)
        finally:
            await close_app(app)

    return asyncio.run(go())


def poll_once_command(args, settings: Settings, env: Env) -> int:
    """Exit 1 when every feed polled failed: cron jobs rely on the exit code to alert."""
    summary, failed = one_cycle(settings, env)
    if failed:
        log.error(summary)
        return 1
    log.info(summary)
    return 0


def run_command(args, settings: Settings, env: Env) -> int:
    async def go() -> int:
        app = build_app(settings, env)
        runner = BotRunner(app, role=getattr(args, "role", "all"))
        install_signal_handlers(runner)
        await runner.start()
        settle_heap()
        log.info("briefbot running: %d feeds, worker %s", len(settings.feeds), app.worker_id)
        try:
            await runner.wait()
        finally:
            log.info("shutting down")
            await runner.stop()
            await close_app(app)
        return 0

    return asyncio.run(go())


def demo_command(args, env: Env) -> int:
    """`run` on the bundled sample feeds, served from the package on 127.0.0.1, with its own database."""

    workdir = Path(tempfile.mkdtemp(prefix="briefbot-demo-"))
    template = resources.files("bot.samples").joinpath("demo.yaml").read_text(encoding="utf-8")
    with SampleFeedServer() as server:
        config_path = workdir / "demo.yaml"
        config_path.write_text(template.replace("{base}", server.base_url), encoding="utf-8")
        registry = default_registry()
        settings = load_config(config_path, registry.parser_for(config_path), registry.check_admin)
        # The sample server is on loopback; only the demo's own feeds are fetched.
        demo_env = env.replace(database_url=f"sqlite:///{workdir}/demo.db", allow_private_urls=True)
        print(f"briefbot demo: {len(settings.feeds)} bundled sample feeds on {server.base_url} "
              f"({'LLM: ' + demo_env.model if demo_env.llm_enabled else 'no LLM configured: extractive briefs'})\n",
              flush=True)
        if args.keep_running:
            return run_command(args, settings, demo_env)
        summary, failed = one_cycle(settings, demo_env, in_file_order=True)
        print("\n" + summary)
        return 1 if failed else 0


def open_store(env: Env) -> Store:
    store = Store(env.database_url)
    store.create()
    return store


def print_briefs(briefs, settings: Settings, as_json: bool) -> None:
    for b in briefs:
        print(json.dumps(b.to_json_dict(), ensure_ascii=False) if as_json else render_brief_text(b, settings))


def brief_command(args, settings: Settings, env: Env) -> int:
    check_words(args.topic.split())
    service = CommandService(settings, open_store(env))
    topic, suggestions = service.resolve_topic(args.topic)
    if topic is None:
        hint = f" Did you mean: {', '.join(suggestions)}?" if suggestions else ""
        print(f"briefbot: unknown topic {args.topic!r}.{hint} Topics: {', '.join(service.topics)}", file=sys.stderr)
        return EXIT_USAGE
    briefs = service.latest(topic, args.limit)
    if not briefs and not args.json:
        print(f"No briefs yet for {topic}.")
    print_briefs(briefs, settings, args.json)
    return 0


def search_command(args, settings: Settings, env: Env) -> int:
    words = check_words([w for arg in args.words for w in arg.split()])
    briefs = CommandService(settings, open_store(env)).search(words, args.limit)
    if not briefs and not args.json:
        print("No matching briefs.")
    print_briefs(briefs, settings, args.json)
    return 0


def ago(when: datetime | None) -> str:
    if when is None:
        return "never"
    seconds = int((datetime.now(timezone.utc) - when).total_seconds())
    if seconds < 0:
        return "in " + ago(datetime.now(timezone.utc) + (datetime.now(timezone.utc) - when))[:-4]
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when else None


def print_json_line(doc: dict) -> None:
    print(json.dumps(doc, ensure_ascii=False))


def feed_json(r) -> dict:
    """One feed of `briefbot feeds --json` (the README lists each field)."""
    return {"name": r.name, "status": r.status, "last_fetch": _iso(r.last_fetch),
            "last_success": _iso(r.last_success), "items": r.items, "held": r.held, "failures": r.failures,
            "next_attempt": _iso(r.next_attempt), "last_error": r.last_error, "disabled_reason": r.disabled_reason,
            "origin": r.origin}


def feeds_command(args, settings: Settings, env: Env) -> int:
    store = open_store(env)
    # The feeds made from chat or with `briefbot subscribe` are listed beside feeds.yaml's.
    settings = merge(settings, ChatConfig.load(store), default_registry().parser_for(settings.source_path))
    service = CommandService(settings, store)
    rows = service.feeds_health()
    known, chat = {r.name for r in rows}, service.subscriptions.chat_feed_names()
    if getattr(args, "json", False):
        for feed in settings.feeds:
            if feed.name not in known:
                print_json_line({"name": feed.name, "status": "never polled", "last_fetch": None,
                                 "last_success": None, "items": 0, "held": 0, "failures": 0, "next_attempt": None,
                                 "last_error": None, "disabled_reason": None,
                                 "origin": "chat" if feed.name in chat else "feeds.yaml"})
        for r in rows:
            print_json_line(feed_json(r))
        return 0
    header = (f"{'FEED':<24} {'FROM':<10} {'STATUS':<18} {'LAST FETCH':<12} {'ITEMS':>6} {'HELD':>5} {'FAIL':>4}  "
              "NEXT / ERROR")
    print(header)
    for feed in settings.feeds:
        if feed.name not in known:
            origin = "chat" if feed.name in chat else "feeds.yaml"
            print(f"{feed.name:<24} {origin:<10} {'never polled':<18} {'never':<12} {0:>6} {0:>5} {0:>4}")
    for r in rows:
        detail = r.disabled_reason or r.last_error or ""
        if r.failures and r.next_attempt:
            detail = f"next try {r.next_attempt:%Y-%m-%d %H:%M} UTC — {detail}"
        print(f"{r.name:<24} {r.origin:<10} {r.status[:18]:<18} {ago(r.last_fetch):<12} {r.items:>6} {r.held:>5} "
              f"{r.failures:>4}  {detail}")
    return 0


def digest_command(args, settings: Settings, env: Env) -> int:
    cfg = None
    if settings.digests:
        cfg = next((d for d in settings.digests if d.name == args.name), None) if args.name else settings.digests[0]
        if cfg is None:
            print(f"briefbot: no digest named {args.name!r}; configured: "
                  f"{', '.join(d.name for d in settings.digests)}", file=sys.stderr)
            return EXIT_USAGE
    elif args.post:
        print("briefbot: --post needs a digest with targets in feeds.yaml", file=sys.stderr)
        return EXIT_USAGE

    async def go() -> int:
        app = build_app(settings, env)
        try:
            now = datetime.now(timezone.utc)
            digest = build_digest(settings, app.store, cfg, now=now)
            digest = await add_overview(app.llm, digest)
            posts_to_console = args.post and cfg is not None and any(t.kind == "console" for t in cfg.to)
            if args.json:
                print(json.dumps(digest.to_json_dict(), ensure_ascii=False, indent=2))
            elif not posts_to_console:  # the console target prints it once below
                print(render_digest_text(digest, color=sys.stdout.isatty()))
            if args.post and cfg is not None:
                # A manual post is its own run, separate from the scheduled one of the day.
                name, day = f"{cfg.name}@manual-{now:%H%M%S}", f"{now:%Y-%m-%d}"
                app.store.claim_digest_run(name, day, now, app.worker_id, digest.to_json_dict())
                app.store.enqueue("digest", f"{name}:{day}", [str(t) for t in cfg.to])
                dispatcher = make_dispatcher(app)
                while await dispatcher.dispatch_once():
                    pass
        finally:
            await close_app(app)
        return 0

    return asyncio.run(go())


def stats_json(store: Store, settings: Settings) -> dict:
    """`briefbot stats --json`: one document (the README lists each field)."""
    days = [{"day": str(row["day"]), "calls": row["calls"], "estimated_calls": row.get("estimated_calls", 0),
             "prompt_tokens": row["prompt_tokens"] or 0, "completion_tokens": row["completion_tokens"] or 0,
             "estimated_cost_usd": round(settings.llm.cost(row["prompt_tokens"], row["completion_tokens"]), 6)}
            for row in store.llm_usage_by_day()]
    return {"llm_days": days, "briefs_stored": store.count_briefs(), "outbox_pending": store.outbox_backlog()}


def stats_command(args, settings: Settings, env: Env) -> int:
    store = open_store(env)
    if getattr(args, "json", False):
        print(json.dumps(stats_json(store, settings), ensure_ascii=False, indent=2))
        return 0
    # ESTIMATED: calls whose server sent no token usage (counted by our estimate).
    print(f"{'DAY':<12} {'CALLS':>6} {'PROMPT TOK':>11} {'COMPL TOK':>10} {'EST. COST':>10} {'ESTIMATED':>9}")
    for row in store.llm_usage_by_day():
        cost = settings.llm.cost(row["prompt_tokens"], row["completion_tokens"])
        print(f"{row['day']:<12} {row['calls']:>6} {row['prompt_tokens'] or 0:>11} {row['completion_tokens'] or 0:>10}"
              f" {'$%.4f' % cost:>10} {row.get('estimated_calls') or 0:>9}")
    shapes = store.llm_dialects()
    if shapes:  # what each LLM server was found to take (learnt from its refusals)
        print(f"\n{'LLM SERVER':<36} {'MODEL':<30} REQUESTS SENT AS")
        for row in shapes:
            print(f"{row['server']:<36} {row['model']:<30} {Dialect.from_json(row['dialect']).describe()}"
                  f" (since {row['learnt'][:16]})")
    print(f"\nbriefs stored: {store.count_briefs()}, outbox pending: {store.outbox_backlog()}")
    return 0


# A failed delivery queued longer ago than this is old news: --retry-failed leaves it failed.
DEFAULT_RETRY_SINCE = timedelta(hours=24)


def retry_failed(store: Store, since: timedelta) -> str:
    cutoff = datetime.now(timezone.utc) - since
    n = store.requeue_failed(queued_after=cutoff)
    older = len(store.outbox_rows(status="failed"))
    text = f"{n} failed deliveries queued again (queued in the last {format_duration(since)})"
    if older:
        text += f"; {older} older left failed (widen with --since)"
    return text


def outbox_json(row, target: str) -> dict:
    """One delivery of `briefbot outbox --json` (the README lists each field)."""
    return {"id": row.id, "status": row.status, "kind": row.kind, "ref_id": row.ref_id, "target": target,
            "attempts": row.attempts, "next_attempt_at": _iso(row.next_attempt_at), "last_error": row.last_error,
            "external_id": row.external_id, "created": _iso(row.created)}


def outbox_command(args, settings: Settings, env: Env) -> int:
    since = getattr(args, "since", None)
    if since is not None and not args.retry_failed:
        raise UsageError("--since goes with --retry-failed")
    store = open_store(env)
    if args.retry_failed:
        print(retry_failed(store, since or DEFAULT_RETRY_SINCE))
        return 0
    registry = default_registry()
    for row in store.outbox_rows():
        target = registry.shown(row.target)
        if getattr(args, "json", False):
            print_json_line(outbox_json(row, target))
            continue
        print(f"{row.id:>6} {row.status:<8} {row.kind:<7} {row.ref_id:<24} {target:<40} "
              f"attempts={row.attempts} {row.last_error or ''}")
    return 0


