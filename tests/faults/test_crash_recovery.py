"""Process fault: `kill -9` at chosen points of a poll+deliver cycle, restart, repeat.

Every relevant item must end up delivered exactly once to each target: the brief, its item
record and its outbox rows commit in one transaction; a delivery is counted before it is sent
and a retried jsonl delivery looks for its own line first.

Each round publishes new items and holds one feed's reply at the server, so the process is
known to be mid-cycle when it is killed: either while that fetch is in flight, or once every
other feed's briefs are committed but none delivered (delivery follows the whole poll).
A killed process's leases are expired in the database (time travel, not a sleep).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from datetime import timedelta

from sqlalchemy import update

from feedgen import Entry, rss
from loopback import Reply
from waits import wait_until

from bot.models import utcnow
from bot.store import Store
from bot.store import schema as t

ROUNDS = 8
FEEDS = 6
PER_ROUND = 2  # new relevant items in each feed each round


def _entries(feed: int, rounds: int) -> list[Entry]:
    """Everything feed `feed` has published by the end of round `rounds - 1`."""
    assert rounds * PER_ROUND < 100
    out = []
    for i in range(rounds * PER_ROUND):
        n = feed * 100 + i
        # Distinct numbers and titles: every item is its own story.
        out.append(Entry(f"Antimony lot {n} cleared after export review ({n} tonnes)",
                         f"Regulators cleared antimony lot number {n} weighing {n + 5000} tonnes at "
                         f"{n + 20000} dollars per tonne, officials said.",
                         guid=f"f{feed}-i{i}", link=f"https://wire.example/{feed}/{i}", hours_ago=1 + i / 100))
        if i % 3 == 0:
            out.append(Entry(f"Local football result {n}", f"Match report number {n}.", guid=f"f{feed}-noise{i}"))
    return out


class Feeds:
    """The feed server's side: what each feed serves now, and one feed whose reply is held."""

    def __init__(self, server) -> None:
        self.rounds = 0
        self.held: int | None = None
        self.arrived = threading.Event()
        self.release = threading.Event()
        for f in range(FEEDS):
            server.route(f"/f{f}.xml", lambda req, f=f: self._serve(f))

    def _serve(self, feed: int) -> Reply:
        body = rss(_entries(feed, self.rounds))
        if feed == self.held:
            self.arrived.set()
            self.release.wait(60)  # until the test has killed the client
        return Reply(200, body, content_type="application/rss+xml")

    def next_round(self, held: int | None) -> None:
        self.rounds += 1
        self.held = held
        self.arrived = threading.Event()
        self.release = threading.Event()


def _expire_leases(db_url: str) -> None:
    """What the killed process held is free now, as if its lease had run out."""
    store = Store(db_url)
    past = utcnow() - timedelta(seconds=1)
    with store.engine.begin() as c:
        c.execute(update(t.feeds).where(t.feeds.c.lease_owner.is_not(None)).values(lease_until=past))
        c.execute(update(t.outbox).where(t.outbox.c.lease_owner.is_not(None)).values(lease_until=past))
    store.close()


def _briefs(db_url: str) -> int:
    store = Store(db_url)
    try:
        return store.count_briefs()
    except Exception:  # noqa: BLE001 - no schema yet, or the writer holds the database: not yet
        return -1
    finally:
        store.close()


def test_kill_9_mid_cycle_loses_and_duplicates_nothing(http_server, tmp_path):
    feeds = Feeds(http_server)
    config = tmp_path / "feeds.yaml"
    listed = "\n".join(f'  - {{name: f{f}, url: "{http_server.url(f"/f{f}.xml")}", every: 30s}}'
                       for f in range(FEEDS))
    config.write_text("topics:\n  rare-earth:\n    label: {en: Rare earths, zh: 稀土}\n    keywords: [antimony]\n"
                      f"feeds:\n{listed}\n"
                      "routes:\n  - {name: out, to: [\"jsonl:out/a.jsonl\", \"jsonl:out/b.jsonl\"]}\n"
                      # Every brief must go out in this test: the flood guard's caps are lifted.
                      "max_new_per_poll: 100000\nmax_posts_per_hour: 100000\n",
                      encoding="utf-8")
    db_url = f"sqlite:///{tmp_path}/db.sqlite"
    env = {**os.environ, "DATABASE_URL": db_url, "BRIEFBOT_CONFIG": str(config), "BRIEFBOT_ALLOW_PRIVATE_URLS": "1",
           "BRIEFBOT_LOG_LEVEL": "WARNING", "BRIEFBOT_LEASE_SECONDS": "300"}
    out_a = tmp_path / "out" / "a.jsonl"
    for r in range(ROUNDS):
        held = r % FEEDS
        feeds.next_round(held)
        proc = subprocess.Popen([sys.executable, "-m", "bot", "poll", "--once"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            wait_until(lambda: feeds.arrived.is_set() or proc.poll() is not None,
                       f"round {r}: the poll to fetch the held feed f{held}", timeout=60)
            if r % 2:
                # Every other feed briefed and committed; the held fetch keeps delivery from starting.
                others = FEEDS * PER_ROUND * feeds.rounds - PER_ROUND * feeds.rounds
                wait_until(lambda: _briefs(db_url) >= others or proc.poll() is not None,
                           f"round {r}: {others} briefs committed while f{held} is held", timeout=60)
            assert proc.poll() is None, (f"round {r}: the poll exited before it was killed "
                                         f"({_briefs(db_url)} briefs):\n{proc.stderr.read()}")
            delivered = len(out_a.read_text().splitlines()) if out_a.exists() else 0
            os.kill(proc.pid, signal.SIGKILL)
            assert proc.wait(timeout=30) == -signal.SIGKILL
            if r % 2:
                # Killed with committed briefs waiting in the outbox: nothing of this round went out.
                assert _briefs(db_url) > delivered
        finally:
            feeds.release.set()
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)
            proc.stderr.close()
        _expire_leases(db_url)

    feeds.next_round(None)  # one more round of items, and nothing held: the restarted bot finishes
    for _ in range(2):
        done = subprocess.run([sys.executable, "-m", "bot", "poll", "--once"], env=env, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stderr
    store = Store(db_url)
    pending = [r for r in store.outbox_rows() if r.status != "sent"]
    assert pending == []
    expected = FEEDS * PER_ROUND * feeds.rounds
    for name in ("a", "b"):
        ids = [json.loads(line)["id"] for line in (tmp_path / "out" / f"{name}.jsonl").read_text().splitlines()]
        assert len(ids) == len(set(ids)), f"duplicate deliveries in {name}.jsonl"
        assert len(set(ids)) == expected
    assert store.count_briefs() == expected
    store.close()
