"""Command line: `briefbot run | poll --once | demo | check | brief | feeds | digest | stats | outbox`."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from bot.config import ConfigError, Env, Settings, load_config
from bot.digest import add_overview, build_digest, render_digest_text
from bot.app.logs import setup_logging

log = logging.getLogger("briefbot")

EXIT_CONFIG = 2


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="briefbot", description="Bilingual rare-earth and tariff news briefs.")
    p.add_argument("--config", help="path to feeds.yaml (default: $BRIEFBOT_CONFIG or ./feeds.yaml)")
    p.add_argument("--log-level", default=os.environ.get("BRIEFBOT_LOG_LEVEL", "INFO"))
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="poll on schedule, deliver, post digests, serve chat commands")
    run.add_argument("--role", choices=["all", "web"], default="all",
                     help="web: only Slack's HTTP endpoint and health, no polling (for a Procfile web process)")
    poll = sub.add_parser("poll", help="poll feeds and deliver")
    poll.add_argument("--once", action="store_true", required=True, help="one cycle over all feeds, then exit")
    demo = sub.add_parser("demo", help="run on bundled sample feeds, offline, console output")
    demo.add_argument("--keep-running", action="store_true", help="keep polling instead of exiting after one cycle")
    sub.add_parser("check", help="validate the config and exit")

    brief = sub.add_parser("brief", help="latest briefs for a topic (same answer as /brief)")
    brief.add_argument("topic")
    brief.add_argument("--limit", type=int, default=5)
    brief.add_argument("--json", action="store_true", help="one JSON object per line")
    search = sub.add_parser("search", help="briefs matching words in either language")
    search.add_argument("words", nargs="+")
    search.add_argument("--limit", type=int, default=5)
    search.add_argument("--json", action="store_true")

    sub.add_parser("feeds", help="feed health: last fetch, status, items, errors")
    digest = sub.add_parser("digest", help="render (and optionally post) a digest now")
    digest.add_argument("name", nargs="?", help="digest name from feeds.yaml (default: the first)")
    digest.add_argument("--post", action="store_true", help="deliver to the digest's targets")
    digest.add_argument("--json", action="store_true")
    sub.add_parser("stats", help="LLM calls, tokens and estimated cost per day; outbox state")
    outbox = sub.add_parser("outbox", help="delivery outbox state")
    outbox.add_argument("--retry-failed", action="store_true", help="put failed deliveries back in the queue")
    sub.add_parser("discord-sync", help="register the /brief command with Discord")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        env = Env.from_environ()
    except ConfigError as exc:
        print(f"briefbot: config error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    # The demo is read by a person: human log lines even when piped.
    setup_logging(args.log_level, secrets=env.secrets, json_logs=False if args.command == "demo" else None)
    try:
        if args.command == "demo":
            return _demo(args, env)
        settings = load_config(args.config)
    except ConfigError as exc:
        print(f"briefbot: config error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if args.command == "check":
        print(f"{settings.source_path}: OK — {len(settings.topics)} topics, {len(settings.feeds)} feeds, "
              f"{len(settings.routes)} routes, {len(settings.digests)} digests")
        return 0
    handler = {
        "run": _run, "poll": _poll_once, "brief": _brief, "search": _search, "feeds": _feeds, "digest": _digest,
        "stats": _stats, "outbox": _outbox, "discord-sync": _discord_sync,
    }[args.command]
    try:
        return handler(args, settings, env)
    except KeyboardInterrupt:
        return 130


# --------------------------------------------------------------------------- running

def _app(settings: Settings, env: Env):
    from bot.app.container import build_app

    return build_app(settings, env)


async def _poll_cycle(app) -> list:
    from bot.delivery.outbox import Dispatcher
    from bot.pipeline.poller import Poller

    reports = await Poller(app).poll_all(force=True)
    dispatcher = Dispatcher(app)
    while await dispatcher.dispatch_once():
        pass
    return reports


def _summarise_reports(reports) -> str:
    new = sum(len(r.new_briefs) for r in reports)
    merged = sum(r.merged for r in reports)
    errors = [r for r in reports if r.outcome == "error"]
    text = f"polled {len(reports)} feed(s): {new} new brief(s), {merged} joined an existing story"
    if errors:
        text += f", {len(errors)} feed error(s): " + "; ".join(f"{r.feed}: {r.error}" for r in errors)
    return text


def _one_cycle(settings: Settings, env: Env) -> str:
    """Build the bot, run one poll+deliver cycle, close it; returns the summary line."""
    async def go() -> str:
        from bot.app.container import close_app

        app = _app(settings, env)
        try:
            return _summarise_reports(await _poll_cycle(app))
        finally:
            await close_app(app)

    return asyncio.run(go())


def _poll_once(args, settings: Settings, env: Env) -> int:
    log.info(_one_cycle(settings, env))
    return 0


def _run(args, settings: Settings, env: Env) -> int:
    async def go() -> int:
        from bot.app.container import settle_heap
        from bot.app.container import close_app
        from bot.app.runner import BotRunner, install_signal_handlers

        app = _app(settings, env)
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


def _demo(args, env: Env) -> int:
    """`run` on the bundled sample feeds, served from the package on 127.0.0.1, with its own database."""
    from importlib import resources

    from bot.samples.server import SampleFeedServer

    workdir = Path(tempfile.mkdtemp(prefix="briefbot-demo-"))
    template = resources.files("bot.samples").joinpath("demo.yaml").read_text(encoding="utf-8")
    with SampleFeedServer() as server:
        config_path = workdir / "demo.yaml"
        config_path.write_text(template.replace("{base}", server.base_url), encoding="utf-8")
        settings = load_config(config_path)
        # The sample server is on loopback; only the demo's own feeds are fetched.
        demo_env = Env(**{**env.__dict__, "database_url": f"sqlite:///{workdir}/demo.db", "allow_private_urls": True})
        print(f"briefbot demo: {len(settings.feeds)} bundled sample feeds on {server.base_url} "
              f"({'LLM: ' + demo_env.model if demo_env.llm_enabled else 'no LLM configured: extractive briefs'})\n",
              flush=True)
        if args.keep_running:
            return _run(args, settings, demo_env)
        print("\n" + _one_cycle(settings, demo_env))
        return 0


# --------------------------------------------------------------------------- queries

def _store(env: Env):
    from bot.store import Store

    store = Store(env.database_url)
    store.create()
    return store


def _print_briefs(briefs, settings: Settings, as_json: bool) -> None:
    from bot.adapters.console import render_brief_text

    for b in briefs:
        print(json.dumps(b.to_json_dict(), ensure_ascii=False) if as_json else render_brief_text(b, settings))


def _brief(args, settings: Settings, env: Env) -> int:
    from bot.commands import QueryService

    service = QueryService(settings, _store(env))
    topic, suggestions = service.resolve_topic(args.topic)
    if topic is None:
        hint = f" Did you mean: {', '.join(suggestions)}?" if suggestions else ""
        print(f"briefbot: unknown topic {args.topic!r}.{hint} Topics: {', '.join(service.topics)}", file=sys.stderr)
        return 1
    briefs = service.latest(topic, args.limit)
    if not briefs and not args.json:
        print(f"No briefs yet for {topic}.")
    _print_briefs(briefs, settings, args.json)
    return 0


def _search(args, settings: Settings, env: Env) -> int:
    from bot.commands import QueryService

    briefs = QueryService(settings, _store(env)).search(args.words, args.limit)
    if not briefs and not args.json:
        print("No matching briefs.")
    _print_briefs(briefs, settings, args.json)
    return 0


def _ago(when: datetime | None) -> str:
    if when is None:
        return "never"
    seconds = int((datetime.now(timezone.utc) - when).total_seconds())
    if seconds < 0:
        return "in " + _ago(datetime.now(timezone.utc) + (datetime.now(timezone.utc) - when))[:-4]
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


def _feeds(args, settings: Settings, env: Env) -> int:
    from bot.commands import QueryService

    rows = QueryService(settings, _store(env)).feeds_health()
    known = {r.name for r in rows}
    header = f"{'FEED':<24} {'STATUS':<18} {'LAST FETCH':<12} {'ITEMS':>6} {'FAIL':>4}  NEXT / ERROR"
    print(header)
    for feed in settings.feeds:
        if feed.name not in known:
            print(f"{feed.name:<24} {'never polled':<18} {'never':<12} {0:>6} {0:>4}")
    for r in rows:
        detail = r.disabled_reason or r.last_error or ""
        if r.failures and r.next_attempt:
            detail = f"next try {r.next_attempt:%Y-%m-%d %H:%M} UTC — {detail}"
        print(f"{r.name:<24} {r.status[:18]:<18} {_ago(r.last_fetch):<12} {r.items:>6} {r.failures:>4}  {detail}")
    return 0


def _digest(args, settings: Settings, env: Env) -> int:
    cfg = None
    if settings.digests:
        cfg = next((d for d in settings.digests if d.name == args.name), None) if args.name else settings.digests[0]
        if cfg is None:
            print(f"briefbot: no digest named {args.name!r}; configured: "
                  f"{', '.join(d.name for d in settings.digests)}", file=sys.stderr)
            return 1
    elif args.post:
        print("briefbot: --post needs a digest with targets in feeds.yaml", file=sys.stderr)
        return 1

    async def go() -> int:
        from bot.app.container import close_app

        app = _app(settings, env)
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
                from bot.delivery.outbox import Dispatcher

                # A manual post is its own run, separate from the scheduled one of the day.
                name, day = f"{cfg.name}@manual-{now:%H%M%S}", f"{now:%Y-%m-%d}"
                app.store.claim_digest_run(name, day, now, app.worker_id, digest.to_json_dict())
                app.store.enqueue("digest", f"{name}:{day}", [str(t) for t in cfg.to])
                dispatcher = Dispatcher(app)
                while await dispatcher.dispatch_once():
                    pass
        finally:
            await close_app(app)
        return 0

    return asyncio.run(go())


def _stats(args, settings: Settings, env: Env) -> int:
    store = _store(env)
    print(f"{'DAY':<12} {'CALLS':>6} {'PROMPT TOK':>11} {'COMPL TOK':>10} {'EST. COST':>10}")
    for row in store.llm_usage_by_day():
        cost = (row["prompt_tokens"] or 0) / 1e6 * settings.llm.price_input_per_mtok + \
               (row["completion_tokens"] or 0) / 1e6 * settings.llm.price_output_per_mtok
        print(f"{row['day']:<12} {row['calls']:>6} {row['prompt_tokens'] or 0:>11} {row['completion_tokens'] or 0:>10}"
              f" {'$%.4f' % cost:>10}")
    print(f"\nbriefs stored: {store.count_briefs()}, outbox pending: {store.outbox_backlog()}")
    return 0


def _outbox(args, settings: Settings, env: Env) -> int:
    from bot.config import parse_target

    store = _store(env)
    if args.retry_failed:
        n = store.requeue_failed()
        print(f"{n} failed deliveries queued again")
        return 0
    for row in store.outbox_rows():
        try:
            target = parse_target(row.target).redacted
        except ValueError:
            target = "(invalid target)"
        print(f"{row.id:>6} {row.status:<8} {row.kind:<7} {row.ref_id:<24} {target:<40} "
              f"attempts={row.attempts} {row.last_error or ''}")
    return 0


def _discord_sync(args, settings: Settings, env: Env) -> int:
    if not env.discord_bot_token:
        print("briefbot: DISCORD_BOT_TOKEN is not set", file=sys.stderr)
        return 1

    async def go() -> int:
        from bot.adapters.discord.commands import sync_commands
        from bot.app.container import close_app

        app = _app(settings, env)
        try:
            synced = await sync_commands(app)
        finally:
            await close_app(app)
        print("synced: " + ", ".join(synced))
        return 0

    return asyncio.run(go())
