"""`briefbot subscribe|unsubscribe|follow|unfollow|follows`: the chat verbs from the shell.

The shell has no channel, so `--to TARGET` (written as in feeds.yaml) names where briefs go. Whoever
can run briefbot with its database may change things: there is no admin check here. A running bot
picks a change up at its next check of the database (every 30 s)."""

from __future__ import annotations

import asyncio
import getpass
import json
import sys

from bot.app.cli_commands import open_store
from bot.app.container import default_registry
from bot.config import Env, Settings
from bot.models import Target
from bot.subscriptions import FROM_FILE, Change, Listing, SubscriptionService
from bot.subscriptions.service import INVALID, UNKNOWN_TOPIC

EXIT_FAILED, EXIT_USAGE = 1, 2
APPLIED = "a running briefbot applies it within 30 s"


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no user name for this uid (some containers)
        return "cli"


def _service(settings: Settings, env: Env) -> SubscriptionService:
    return SubscriptionService(lambda: settings, open_store(env), allow_private=env.allow_private_urls)


def _target(text: str | None, settings: Settings, command: str) -> Target | None:
    """The `--to` target, or None after printing why it is refused."""
    if not text:
        print(f"briefbot {command}: --to TARGET is required (where briefs go: "
              f"{default_registry().target_forms()})", file=sys.stderr)
        return None
    try:
        return default_registry().parser_for(settings.source_path)(text)
    except ValueError as exc:
        print(f"briefbot {command}: --to: {exc}", file=sys.stderr)
        return None


def _report(change: Change, command: str) -> int:
    if change.ok:
        print(change.message + (f" ({APPLIED})" if change.code != "already" else ""))
        return 0
    print(f"briefbot {command}: {change.message}", file=sys.stderr)
    return EXIT_USAGE if change.code in (INVALID, UNKNOWN_TOPIC) else EXIT_FAILED


def subscribe_command(args, settings: Settings, env: Env) -> int:
    target = _target(args.to, settings, "subscribe")
    if target is None:
        return EXIT_USAGE
    change = asyncio.run(_service(settings, env).subscribe(args.url, list(args.topics), target, _actor()))
    return _report(change, "subscribe")


def unsubscribe_command(args, settings: Settings, env: Env) -> int:
    return _report(_service(settings, env).unsubscribe(args.feed, _actor()), "unsubscribe")


def follow_command(args, settings: Settings, env: Env) -> int:
    target = _target(args.to, settings, args.command)
    if target is None:
        return EXIT_USAGE
    service = _service(settings, env)
    act = service.follow if args.command == "follow" else service.unfollow
    return _report(act(" ".join(args.topic), target, _actor()), args.command)


def follows_command(args, settings: Settings, env: Env) -> int:
    target = _target(args.to, settings, "follows") if args.to else None
    if args.to and target is None:
        return EXIT_USAGE
    listing = _service(settings, env).listing(target)
    if args.json:
        print(json.dumps(listing_json(listing), ensure_ascii=False))
    else:
        print_listing(listing)
    return 0


def listing_json(listing: Listing) -> dict:
    """`briefbot follows --json` (the README lists each field)."""
    return {
        "target": listing.target,
        "follows": [{"topic": f.topic, "target": f.target, "origin": f.origin, "source": f.source}
                    for f in listing.follows],
        "feeds": [{"name": f.name, "origin": f.origin, "topics": list(f.topics), "status": f.status,
                   "failures": f.failures, "items": f.items,
                   "last_success": f.last_success.isoformat() if f.last_success else None,
                   "problem": f.problem, "created_by": f.created_by} for f in listing.feeds],
    }


def print_listing(listing: Listing) -> None:
    print(f"{'TOPIC':<16} {'TARGET':<40} FROM")
    for f in listing.follows:
        source = f"route {f.source} in feeds.yaml" if f.origin == FROM_FILE else f"followed by {f.source}"
        print(f"{f.topic:<16} {f.target:<40} {source}")
    if not listing.follows:
        print("(no follows)")
    print()
    print(f"{'FEED':<32} {'FROM':<24} {'STATUS':<18} {'ITEMS':>6} {'FAIL':>4}  TOPICS")
    for feed in listing.feeds:
        origin = "feeds.yaml" if feed.origin == FROM_FILE else f"chat ({feed.created_by})"
        print(f"{feed.name:<32} {origin[:24]:<24} {feed.status[:18]:<18} {feed.items:>6} {feed.failures:>4}  "
              f"{', '.join(feed.topics)}")
