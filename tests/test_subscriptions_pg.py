"""A subscription made from chat survives a restart and is polled by exactly one of two workers
sharing a PostgreSQL database (each with its own engine, event loop and worker id), and its
matching items are delivered once."""

from __future__ import annotations

import asyncio
import threading

from feedgen import Entry, lines, make_env, make_settings, poll_and_deliver, rss
from loopback import Reply
from pg import pg_server, pg_url  # noqa: F401  (pytest fixtures)

from bot.app.container import build_app, close_app
from bot.models import Target
from bot.store import Store

WIRE = [Entry("US raises tariffs on steel imports", "Tariffs rise to 25% on steel.", guid="t1"),
        Entry("New tariff schedule for cars", "A tariff of 10% applies to cars.", guid="t2"),
        Entry("Tariff truce extended", "The trade war truce holds; tariffs paused.", guid="t3"),
        Entry("Gallium prices climb", "Gallium up 5% on export limits.", guid="g1")]


def test_chat_subscription_survives_a_restart_and_one_of_two_workers_polls_it(pg_url, tmp_path, http_server):
    url = http_server.route("/wire.xml", Reply(body=rss(WIRE), content_type="application/rss+xml"))
    settings = make_settings(tmp_path, [], targets=["jsonl:out/desk.jsonl"])
    chat_target = Target("jsonl", str(tmp_path / "out" / "channel.jsonl"))

    async def first_life() -> str:
        app = build_app(settings, make_env(pg_url))
        try:
            change = await app.subscriptions.subscribe(url, ["tariff"], chat_target, "slack:U0ADMIN")
            assert change.ok, change.message
            return change.feed
        finally:
            await close_app(app)
            app.store.close()

    feed = asyncio.run(first_life())
    assert len(http_server.requests_to("/wire.xml")) == 1  # the one read before it was accepted

    # A restart: two workers start from the same feeds.yaml, which does not name the feed.
    barrier = threading.Barrier(2)
    outcomes: dict[int, list[str]] = {}
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        async def run() -> list[str]:
            app = build_app(settings, make_env(pg_url), store=Store(pg_url))
            # Two processes in the test's one: each its own worker id, as hostname:pid would give.
            app.worker_id = f"worker-{i + 1}"
            try:
                assert [f.name for f in app.settings.feeds] == [feed]
                assert chat_target in app.settings.targets_for(["tariff"])
                await asyncio.to_thread(barrier.wait, 30)
                return [r.outcome for r in await poll_and_deliver(app, force=False)]
            finally:
                await close_app(app)
                app.store.close()

        try:
            outcomes[i] = asyncio.run(run())
        except BaseException as exc:  # asserted below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == [] and not any(t.is_alive() for t in threads)
    assert sorted(o for outcome in outcomes.values() for o in outcome) == ["ok", "skipped"]
    assert len(http_server.requests_to("/wire.xml")) == 2

    channel = lines(tmp_path / "out" / "channel.jsonl")
    assert sorted(d["title"]["en"] for d in channel) == sorted(e.title for e in WIRE[:3])
    assert len({d["id"] for d in channel}) == 3
    assert len(lines(tmp_path / "out" / "desk.jsonl")) == 3
