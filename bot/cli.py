"""The command line: parses `briefbot …` and hands each subcommand to bot.app.cli_commands.

Exit codes: 0 ok, 1 the work failed (every feed of a poll failed), 2 usage or configuration,
3 the database cannot be opened or is damaged."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from datetime import timedelta
from importlib import metadata
from pathlib import Path

from bot.app import cli_commands, subscription_commands
from bot.app.container import build_app, close_app, default_registry
from bot.app.dashboard_command import dashboard_command
from bot.app.inspect import inspect_command
from bot.app.logs import setup_logging
from bot.commands import UsageError, check_count
from bot.config import DEFAULT_CONFIG, ConfigError, Env, Settings, load_config, parse_duration
from bot.delivery.adapter import AdapterRegistry, CliCommand
from bot.store.engine import StoreError

EXIT_USAGE = EXIT_CONFIG = 2
EXIT_DATABASE = 3
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line saying what is wrong and where help is."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _log_level(value: str) -> str:
    if value.strip().upper() not in LOG_LEVELS:
        raise argparse.ArgumentTypeError(f"log level {value!r} is not one of {', '.join(LOG_LEVELS)}")
    return value.strip().upper()


def _limit(value: str) -> int:
    try:
        return check_count(value, "")
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _since(value: str) -> timedelta:
    try:
        return parse_duration(value, longest=timedelta(days=3650))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _version() -> str:
    try:
        return metadata.version("briefbot")
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


def _global_options(parser: argparse.ArgumentParser, after_command: bool) -> None:
    """--config and --log-level, before the subcommand or after it. After it they default to
    SUPPRESS, so an option given only before the subcommand is not reset by the subparser."""
    default = argparse.SUPPRESS if after_command else None
    parser.add_argument("--config", default=default,
                        help="path to feeds.yaml (default: $BRIEFBOT_CONFIG or ./feeds.yaml)")
    parser.add_argument("--log-level", type=_log_level, default=default,
                        help=f"one of {', '.join(LOG_LEVELS)} (default: $BRIEFBOT_LOG_LEVEL or INFO)")


def _parser(registry: AdapterRegistry) -> argparse.ArgumentParser:
    p = _Parser(prog="briefbot", description="Bilingual rare-earth and tariff news briefs.")
    p.add_argument("--version", action="version", version=f"briefbot {_version()}")
    _global_options(p, after_command=False)
    common = _Parser(add_help=False)
    _global_options(common, after_command=True)
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def command(name: str, **kw) -> argparse.ArgumentParser:
        return sub.add_parser(name, parents=[common], **kw)

    run = command("run", help="poll on schedule, deliver, post digests, serve chat commands")
    run.add_argument("--role", choices=["all", "web"], default="all",
                     help="web: only the chat adapters' HTTP endpoints and health, no polling (a Procfile web process)")
    poll = command("poll", help="poll feeds and deliver")
    poll.add_argument("--once", action="store_true", required=True, help="one cycle over all feeds, then exit")
    demo = command("demo", help="run on bundled sample feeds, offline, console output")
    demo.add_argument("--keep-running", action="store_true", help="keep polling instead of exiting after one cycle")
    command("check", help="validate the config and exit")

    brief = command("brief", help="latest briefs for a topic (same answer as /brief)")
    brief.add_argument("topic")
    brief.add_argument("--limit", type=_limit, default=5, help="how many, 1-20 (default 5)")
    brief.add_argument("--json", action="store_true", help="one JSON object per line")
    search = command("search", help="briefs matching words in either language")
    search.add_argument("words", nargs="+")
    search.add_argument("--limit", type=_limit, default=5, help="how many, 1-20 (default 5)")
    search.add_argument("--json", action="store_true")

    feeds = command("feeds", help="feed health: last fetch, status, items, errors")
    feeds.add_argument("--json", action="store_true", help="one JSON object per feed (fields: see README)")
    inspect = command("inspect", help="why each entry of a feed did or didn't post (writes nothing)")
    inspect.add_argument("sources", nargs="+", metavar="SOURCE", help="a feed URL, a configured feed's name, or a file")
    inspect.add_argument("--json", action="store_true", help="one JSON object per entry (or unreadable source)")
    inspect.add_argument("--content-type", metavar="TYPE",
                         help="read every body as this Content-Type (default: the server's; files: sniffed)")
    digest = command("digest", help="render (and optionally post) a digest now")
    digest.add_argument("name", nargs="?", help="digest name from feeds.yaml (default: the first)")
    digest.add_argument("--post", action="store_true", help="deliver to the digest's targets")
    digest.add_argument("--json", action="store_true")
    stats = command("stats", help="LLM calls, tokens and estimated cost per day; outbox state")
    stats.add_argument("--json", action="store_true", help="one JSON document (fields: see README)")
    outbox = command("outbox", help="delivery outbox state")
    outbox.add_argument("--retry-failed", action="store_true", help="put failed deliveries back in the queue")
    outbox.add_argument("--since", type=_since, metavar="DURATION",
                        help="with --retry-failed: only deliveries queued this recently, e.g. 6h, 2d "
                             "(default 24h), so old news is not posted again")
    outbox.add_argument("--json", action="store_true", help="one JSON object per delivery (fields: see README)")
    dashboard = command("dashboard", help="serve only the web dashboard (BRIEFBOT_WEB_TOKEN, BRIEFBOT_BIND)")
    dashboard.add_argument("--port", type=int, help="port to listen on (default: $PORT, else $METRICS_PORT, else 8080)")
    _subscription_parsers(command)
    for extra in registry.cli_commands():
        command(extra.name, help=extra.help)
    return p


def _subscription_parsers(command) -> None:
    to_help = "where its briefs go, written as in feeds.yaml (kind:address, e.g. jsonl:out/x.jsonl)"
    subscribe = command("subscribe", help="add a feed: read it once, poll it from now on (as /brief subscribe)")
    subscribe.add_argument("url", help="the feed's URL (RSS, Atom or JSON Feed)")
    subscribe.add_argument("topics", nargs="*", metavar="TOPIC", help="topics it may produce (default: all)")
    subscribe.add_argument("--to", metavar="TARGET", help=to_help)
    unsubscribe = command("unsubscribe", help="remove a feed added with subscribe (feeds.yaml's stay)")
    unsubscribe.add_argument("feed", metavar="NAME|URL")
    for verb, what in (("follow", "post a topic's new briefs to a target"),
                       ("unfollow", "stop posting a topic's briefs to a target")):
        follow = command(verb, help=what)
        follow.add_argument("topic", nargs="+", metavar="TOPIC")
        follow.add_argument("--to", metavar="TARGET", help=to_help)
    follows = command("follows", help="follows and the feeds behind them, with health (as /brief list)")
    follows.add_argument("--to", metavar="TARGET", help="only this target's (default: every target's)")
    follows.add_argument("--json", action="store_true", help="one JSON document (fields: see README)")


_HANDLERS = {
    "run": cli_commands.run_command, "poll": cli_commands.poll_once_command, "brief": cli_commands.brief_command,
    "search": cli_commands.search_command, "feeds": cli_commands.feeds_command,
    "digest": cli_commands.digest_command, "stats": cli_commands.stats_command,
    "outbox": cli_commands.outbox_command, "inspect": inspect_command, "dashboard": dashboard_command,
    "subscribe": subscription_commands.subscribe_command, "unsubscribe": subscription_commands.unsubscribe_command,
    "follow": subscription_commands.follow_command, "unfollow": subscription_commands.follow_command,
    "follows": subscription_commands.follows_command,
}


def main(argv: list[str] | None = None) -> int:
    registry = default_registry()
    parser = _parser(registry)
    args = parser.parse_args(argv)
    if args.log_level is None:
        try:
            args.log_level = _log_level(os.environ.get("BRIEFBOT_LOG_LEVEL") or "INFO")
        except argparse.ArgumentTypeError as exc:
            parser.error(f"BRIEFBOT_LOG_LEVEL: {exc}")
    try:
        env = Env.from_environ()
    except ConfigError as exc:
        print(f"briefbot: config error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    # The demo is read by a person: human log lines even when piped.
    setup_logging(args.log_level, secrets=env.secrets(registry.secret_env()),
                  json_logs=False if args.command == "demo" else None, quiet_loggers=registry.quiet_loggers())
    try:
        if args.command == "demo":
            return cli_commands.demo_command(args, env)
        path = Path(args.config or os.environ.get("BRIEFBOT_CONFIG") or DEFAULT_CONFIG)
        settings = load_config(path, registry.parser_for(path), registry.check_admin)
    except ConfigError as exc:
        print(f"briefbot: config error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if args.command == "check":
        print(f"{settings.source_path}: OK — {len(settings.topics)} topics, {len(settings.feeds)} feeds, "
              f"{len(settings.routes)} routes, {len(settings.digests)} digests")
        return 0
    try:
        if args.command in _HANDLERS:
            return _HANDLERS[args.command](args, settings, env)
        adapter_command = next(c for c in registry.cli_commands() if c.name == args.command)
        return asyncio.run(_adapter_command(adapter_command, args, settings, env))
    except UsageError as exc:
        print(f"briefbot {args.command}: {exc} (see briefbot {args.command} --help)", file=sys.stderr)
        return EXIT_USAGE
    except StoreError as exc:
        print(f"briefbot: database error: {exc}", file=sys.stderr)
        return EXIT_DATABASE
    except KeyboardInterrupt:
        return 130


async def _adapter_command(command: CliCommand, args: argparse.Namespace, settings: Settings, env: Env) -> int:
    app = build_app(settings, env)
    try:
        return await command.run(args, app.adapter_context())
    finally:
        await close_app(app)
