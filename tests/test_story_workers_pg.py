"""Story matching shared by workers: two worker processes polling two outlets of one story at the
same moment make one brief, every time.

Each worker is a real poller (the app `briefbot run` builds, the same claim, fetch, parse, decide
and write) in a process of its own, given one of the two outlets, so the outlets are sure to be
polled by different workers. A round starts when the test tells both workers to poll; the outlets
answer only once both have asked (a barrier in the feed server), so both workers read their
story before either has written it, and both find it new. The database must settle it: one
brief, with both outlets as its sources.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from feedgen import TOPICS, Entry, rss
from loopback import LoopbackServer, Reply, Request
from pg import any_db_url, pg_server, pg_url  # noqa: F401  (pytest fixtures)
from sqlalchemy import select
from story_pairs import (
    CANOLA_A,
    CANOLA_Y,
    COAL_A,
    CRUDE_C,
    LYNAS_A,
    LYNAS_X,
    MAGNET_A,
    MAGNET_B,
    STEEL_A,
    STEEL_X,
    TRUCE_A,
    TRUCE_B,
)

from bot.store import Store
from bot.store import schema as t

# One poller per process; a line "poll" on its stdin runs one poll of its feeds, answered by one
# line of JSON: each feed's outcome, new briefs, merged items and error.
WORKER = """
import asyncio, json, sys
from bot.app.container import build_app, close_app, make_poller
from bot.config import Env, Settings

settings = Settings.model_validate(json.loads(sys.argv[2]))
env = Env.from_environ({"DATABASE_URL": sys.argv[1], "BRIEFBOT_ALLOW_PRIVATE_URLS": "1",
                        "BRIEFBOT_PARSE_WORKERS": "0"})

async def main():
    app = build_app(settings, env)
    poller = make_poller(app)
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    while (await loop.run_in_executor(None, sys.stdin.readline)).strip() == "poll":
        reports = await poller.poll_all(force=True)
        print(json.dumps([[r.outcome, r.new_briefs, r.merged, r.error] for r in reports]), flush=True)
    await close_app(app)

asyncio.run(main())
"""

# Each round: one story told by both outlets (different headlines, the same figures and subject,
# in English and Chinese), or two stories that must stay apart.
SAME_STORY_ROUNDS = [(STEEL_A, STEEL_X), (MAGNET_A, MAGNET_B), (LYNAS_A, LYNAS_X), (CANOLA_A, CANOLA_Y),
                     (TRUCE_A, TRUCE_B)]
TWO_STORIES_ROUND = (COAL_A, CRUDE_C)
OUTLETS = ("outlet-a", "outlet-b")


class Outlets:
    """Two feeds on one loopback server. Each round publishes one more entry per outlet; a round's
    feeds are answered only once both have been asked for."""

    def __init__(self, server: LoopbackServer):
        self.server = server
        self.entries: dict[str, list[Entry]] = {name: [] for name in OUTLETS}
        self._barrier = threading.Barrier(len(OUTLETS), timeout=60)
        self._lock = threading.Lock()
        for name in OUTLETS:
            server.route(f"/{name}.xml", self._serve)

    def publish(self, round_no: int, articles: tuple) -> None:
        with self._lock:
            for name, article in zip(OUTLETS, articles):
                self.entries[name].insert(0, Entry(article.title, article.body, guid=f"{name}-{round_no}",
                                                   link=f"https://{name}.example/news/{round_no}"))
            self._barrier = threading.Barrier(len(OUTLETS), timeout=60)

    def _serve(self, req: Request) -> Reply:
        name = req.path.strip("/").removesuffix(".xml")
        with self._lock:
            barrier, body = self._barrier, rss(self.entries[name], title=name)
        barrier.wait()  # both workers have asked: both read the story before either writes it
        return Reply(200, body, content_type="application/rss+xml")


def worker_settings(server: LoopbackServer, outlet: str, tmp_path: Path) -> dict:
    return {"languages": ["en", "zh"], "topics": TOPICS,
            "feeds": [{"name": outlet, "url": server.url(f"/{outlet}.xml"), "every": "1h"}],
            "routes": [{"name": "all", "to": [f"jsonl:{tmp_path / 'briefs.jsonl'}"]}]}


def start_worker(db_url: str, settings: dict) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", WORKER, db_url, json.dumps(settings)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "ready\n", proc.communicate(timeout=30)[1][-3000:]
    return proc


def poll_together(workers: list[subprocess.Popen]) -> list[list]:
    """Both workers poll their outlet; each one's reports once it has written."""
    for proc in workers:
        proc.stdin.write("poll\n")
        proc.stdin.flush()
    replies = [proc.stdout.readline() for proc in workers]
    for proc, reply in zip(workers, replies):
        assert reply, f"worker exited: {proc.communicate(timeout=30)[1][-3000:]}"
    return [json.loads(reply) for reply in replies]


def items_of_round(store: Store, round_no: int) -> dict[str, tuple[str, str]]:
    """outlet -> (status, brief id) of the round's entry."""
    guids = [f"{name}-{round_no}" for name in OUTLETS]
    with store.engine.connect() as c:
        rows = c.execute(select(t.items.c.feed, t.items.c.status, t.items.c.brief_id)
                         .where(t.items.c.guid.in_(guids))).all()
    return {r.feed: (r.status, r.brief_id) for r in rows}


def source_feeds(store: Store, brief_id: str) -> list[str]:
    with store.engine.connect() as c:
        return sorted(c.execute(select(t.brief_sources.c.feed).where(t.brief_sources.c.brief_id == brief_id))
                      .scalars())


@pytest.mark.timeout(300)
def test_two_workers_polling_one_story_at_once_make_one_brief_every_time(any_db_url, tmp_path):
    with LoopbackServer() as server:
        outlets = Outlets(server)
        store = Store(any_db_url)
        store.create()
        workers = [start_worker(any_db_url, worker_settings(server, outlet, tmp_path)) for outlet in OUTLETS]
        try:
            briefs = set()
            for round_no, pair in enumerate(SAME_STORY_ROUNDS):
                outlets.publish(round_no, pair)
                reports = poll_together(workers)
                assert all(outcome == "ok" and error is None for report in reports
                           for outcome, _, _, error in report), reports
                items = items_of_round(store, round_no)
                assert sorted(status for status, _ in items.values()) == ["briefed", "merged"], (round_no, items)
                (brief_id,) = {brief_id for _, brief_id in items.values()}
                assert source_feeds(store, brief_id) == sorted(OUTLETS), round_no
                if pair[0].lang != pair[1].lang:
                    # Told in both languages: each has its own outlet's text, whichever was written first.
                    brief = store.get_brief(brief_id)
                    assert brief.untranslated == [], round_no
                    assert [brief.title[a.lang] for a in pair] == [a.title for a in pair], round_no
                # One new brief and one item joining it, whichever worker wrote first.
                assert sorted((len(new), merged) for report in reports for _, new, merged, _ in report) \
                    == [(0, 1), (1, 0)], (round_no, reports)
                briefs.add(brief_id)
            assert len(briefs) == len(SAME_STORY_ROUNDS) == store.count_briefs()

            # Two different stories polled at the same moment stay two briefs.
            round_no = len(SAME_STORY_ROUNDS)
            outlets.publish(round_no, TWO_STORIES_ROUND)
            reports = poll_together(workers)
            items = items_of_round(store, round_no)
            assert [status for status, _ in items.values()] == ["briefed", "briefed"], items
            assert len({brief_id for _, brief_id in items.values()}) == 2
            for status, brief_id in items.values():
                assert len(source_feeds(store, brief_id)) == 1
            assert store.count_briefs() == len(SAME_STORY_ROUNDS) + 2
            # Every brief is queued for delivery once; no row points at a story that is not stored.
            outbox = store.outbox_rows()
            with store.engine.connect() as c:
                stored = set(c.execute(select(t.briefs.c.id)).scalars())
            assert sorted(r.ref_id for r in outbox) == sorted(stored)
        finally:
            for proc in workers:
                if proc.poll() is None:
                    proc.stdin.close()
            for proc in workers:
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                proc.stdout.close()
                proc.stderr.close()
            store.close()
        assert [proc.returncode for proc in workers] == [0, 0]
