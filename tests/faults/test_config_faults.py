"""Config faults: a broken feeds.yaml at start stops with a precise error (exit 2); a broken file
saved while the bot runs is refused and the last good config keeps working."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import pytest

from bot.config import load_config
from bot.app.container import build_app, close_app, parse_target
from bot.app.runner import BotRunner
from faults.support import free_port, healthy_entry, lines
from feedgen import make_env, rss
from loopback import Reply
from waits import async_wait_until

RSS = "application/rss+xml"

TOPICS = """topics:
  rare-earth:
    label: {en: Rare earths, zh: 稀土}
    keywords: [antimony, rare earth]
"""


def config_text(feeds: dict[str, str], every: str = "60s") -> str:
    lines_ = [f'  - {{name: {name}, url: "{url}", every: {every}}}' for name, url in feeds.items()]
    return TOPICS + "feeds:\n" + "\n".join(lines_) + "\nroutes:\n  - {name: all, to: [\"jsonl:out/briefs.jsonl\"]}\n"


@pytest.mark.fault("config: broken feeds.yaml at start")
@pytest.mark.parametrize("broken, where", [
    # An invalid value on line 6 (the first feed): file:line: field: message.
    (TOPICS + "feeds:\n  - {name: wire, url: \"http://127.0.0.1:9/f.xml\", every: often}\n", ":6: feeds[0].every:"),
    # YAML syntax error.
    (TOPICS + "feeds:\n  - name: wire\n     url: [unclosed\n", ":7: YAML syntax error:"),
])
def test_broken_config_at_start_exits_2_with_file_line_field(tmp_path, broken, where):
    config = tmp_path / "feeds.yaml"
    config.write_text(broken, encoding="utf-8")
    env = {**os.environ, "BRIEFBOT_CONFIG": str(config), "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite",
           "METRICS_PORT": str(free_port())}
    done = subprocess.run([sys.executable, "-m", "bot", "run"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert f"briefbot: config error: {config}" in done.stderr
    assert f"{config}{where}" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "db.sqlite").exists()  # nothing started


async def wait_until(predicate) -> None:
    """Let the running bot work until `predicate()` holds."""
    await async_wait_until(predicate, "the running bot to get there")


def poll_jobs(runner: BotRunner) -> set[str]:
    return {j.id for j in runner.scheduler.get_jobs() if j.id.startswith("poll:")}


@pytest.mark.fault("config: broken feeds.yaml saved while running")
async def test_reload_with_broken_file_keeps_the_last_good_config(server, tmp_path, db_url, caplog):
    caplog.set_level(logging.INFO, logger="briefbot")
    server.route("/a.xml", Reply(200, rss([healthy_entry("a", 51)]), content_type=RSS))
    server.route("/b.xml", Reply(200, rss([healthy_entry("b", 52)]), content_type=RSS))
    config = tmp_path / "feeds.yaml"
    out = tmp_path / "out" / "briefs.jsonl"
    config.write_text(config_text({"a": server.url("/a.xml")}), encoding="utf-8")
    app = build_app(load_config(config, parse_target), make_env(db_url, metrics_port=free_port()))
    runner = BotRunner(app)
    await runner.start()
    try:
        # The running bot polls feed a on its own and delivers its brief.
        assert poll_jobs(runner) == {"poll:a"}
        await wait_until(lambda: len(lines(out)) == 1)

        # Saved half-edited (an unknown key): the watcher notices the change and refuses it.
        config.write_text(config_text({"a": server.url("/a.xml")}).replace("every: 60s", "every: 60s, evry: 2m"),
                          encoding="utf-8")
        os.utime(config, (1, 1))
        await runner.config_watch_job()
        refused = [r for r in caplog.records if "config reload failed, keeping the last good config" in r.getMessage()]
        assert refused and f"{config}:" in refused[0].getMessage() and "evry: unknown key" in refused[0].getMessage()
        assert await runner.reload_config() is False
        assert [f.name for f in app.settings.feeds] == ["a"] and poll_jobs(runner) == {"poll:a"}
        assert app.settings.feed("a").url == server.url("/a.xml")

        # Fixed, with a second feed: applied, scheduled, and polled by the running bot.
        config.write_text(config_text({"a": server.url("/a.xml"), "b": server.url("/b.xml")}), encoding="utf-8")
        assert await runner.reload_config() is True
        assert [f.name for f in app.settings.feeds] == ["a", "b"] and poll_jobs(runner) == {"poll:a", "poll:b"}
        await wait_until(lambda: len(lines(out)) == 2)
    finally:
        await runner.stop()
        await close_app(app)
    assert app.store.count_briefs() == 2
    assert sorted(b["sources"][0]["feed"] for b in lines(out)) == ["a", "b"]
