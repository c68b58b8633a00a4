"""Process fault: `kill -9` at random points of a poll+deliver cycle, restart, repeat.

Every relevant item must end up delivered exactly once to each target: the brief, its item
record and its outbox rows commit in one transaction; a delivery is counted before it is sent
and a retried jsonl delivery looks for its own line first.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

from feedgen import Entry, rss
from loopback import Reply

from bot.store import Store

ROUNDS = 50
FEEDS = 12
ITEMS_PER_FEED = 8


def _entries(feed: int) -> list[Entry]:
    out = []
    for i in range(ITEMS_PER_FEED):
        n = feed * 100 + i
        # Distinct numbers and titles: every item is its own story.
        out.append(Entry(f"Antimony lot {n} cleared after export review ({n} tonnes)",
                         f"Regulators cleared antimony lot number {n} weighing {n + 5000} tonnes at "
                         f"{n + 20000} dollars per tonne, officials said.",
                         guid=f"f{feed}-i{i}", link=f"https://wire.example/{feed}/{i}", hours_ago=1 + i / 10))
        if i % 3 == 0:
            out.append(Entry(f"Local football result {n}", f"Match report number {n}.", guid=f"f{feed}-noise{i}"))
    return out


def test_kill_9_at_random_points_loses_and_duplicates_nothing(http_server, tmp_path):
    for f in range(FEEDS):
        http_server.route(f"/f{f}.xml", Reply(200, rss(_entries(f)), content_type="application/rss+xml"))
    config = tmp_path / "feeds.yaml"
    feeds = "\n".join(f'  - {{name: f{f}, url: "{http_server.url(f"/f{f}.xml")}", every: 30s}}' for f in range(FEEDS))
    config.write_text("topics:\n  rare-earth:\n    label: {en: Rare earths, zh: 稀土}\n    keywords: [antimony]\n"
                      f"feeds:\n{feeds}\nroutes:\n  - {{name: out, to: [\"jsonl:out/a.jsonl\", \"jsonl:out/b.jsonl\"]}}\n",
                      encoding="utf-8")
    db_url = f"sqlite:///{tmp_path}/db.sqlite"
    env = {**os.environ, "DATABASE_URL": db_url, "BRIEFBOT_CONFIG": str(config), "BRIEFBOT_ALLOW_PRIVATE_URLS": "1",
           "BRIEFBOT_LOG_LEVEL": "WARNING", "BRIEFBOT_LEASE_SECONDS": "3"}
    rng = random.Random(1234)
    killed = 0
    for _ in range(ROUNDS):
        proc = subprocess.Popen([sys.executable, "-m", "bot", "poll", "--once"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.05, 1.2))
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            killed += 1
        proc.wait(timeout=30)
    # Finally let it finish, after the last killed process's leases (3 s) have expired.
    time.sleep(3.5)
    for _ in range(2):
        done = subprocess.run([sys.executable, "-m", "bot", "poll", "--once"], env=env, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stderr
    store = Store(db_url)
    pending = [r for r in store.outbox_rows() if r.status != "sent"]
    assert pending == []
    expected = FEEDS * ITEMS_PER_FEED
    assert killed >= ROUNDS // 3, f"only {killed} kills landed mid-run"
    for name in ("a", "b"):
        ids = [json.loads(line)["id"] for line in (tmp_path / "out" / f"{name}.jsonl").read_text().splitlines()]
        assert len(ids) == len(set(ids)), f"duplicate deliveries in {name}.jsonl"
        assert len(set(ids)) == expected
    assert store.count_briefs() == expected
