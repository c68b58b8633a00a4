"""Hostile feeds.yaml, as an attacker or a careless operator writes it: `briefbot check` and every other
command stop with one located line and exit 2, quickly and in little memory; a running bot sent the same
file (SIGHUP or the file watcher) logs one line, keeps its last good configuration, and keeps answering
/healthz while the file is read and after."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import resource
import signal
import subprocess
import sys
import threading
from pathlib import Path

import aiohttp
import pytest

import bot.config.loading as loading_module
from bot.app.container import build_app, close_app, parse_target
from bot.app.runner import BotRunner
from bot.config import load_config
from faults.support import free_port, healthy_entry, lines
from feedgen import make_env, rss
from loopback import Reply
from waits import async_wait_until, wait_until

RSS = "application/rss+xml"
REFUSED = "config reload failed, keeping the last good config"
# A refused document is read in a bounded way: a child that needed more than this would be expanding it.
CHILD_MEMORY = 400 * 1024 * 1024

TOPICS = "topics:\n  tariff:\n    label: {en: Tariffs, zh: 关税}\n    keywords: [tariff, antimony]\n"


def config_text(feeds: dict[str, str], every: str = "60s") -> str:
    entries = "".join(f'  - {{name: {name}, url: "{url}", every: {every}}}\n' for name, url in feeds.items())
    return TOPICS + "feeds:\n" + entries + 'routes:\n  - {name: all, to: ["jsonl:out/briefs.jsonl"]}\n'


GOOD = config_text({"wire": "https://example.org/rss.xml"})  # lines 5-6: feeds, the wire feed


def alias_bomb() -> str:
    """Under 600 bytes: nine anchor levels of ten copies (10^9 strings if expanded)."""
    out = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    out += [f"a{n}: &a{n} [" + ", ".join([f"*a{n - 1}"] * 10) + "]" for n in range(1, 9)]
    return "\n".join(out) + "\n"


BOMB = alias_bomb()
assert len(BOMB.encode()) < 600

# (document, what follows "file" in the one error line)
CASES = {
    "every: .inf": (GOOD.replace("every: 60s", "every: .inf"),
                    ":6: feeds[0].every: duration inf is out of range (allowed 30s to 30d)"),
    "every: 99999999999999d": (GOOD.replace("every: 60s", "every: 99999999999999d"),
                               ":6: feeds[0].every: duration '99999999999999d' is out of range (allowed 30s to 30d)"),
    "max_age: 9999999999d": ("max_age: 9999999999d\n" + GOOD,
                             ":1: max_age: duration '9999999999d' is out of range (allowed 1s to 365d)"),
    "500 levels of nesting": ("topics: " + "[" * 500 + "]" * 500 + "\n",
                              ":1: topics" + "[0]" * 15 + ": nested more than 16 levels deep"),
    "alias bomb in every:": (BOMB + GOOD.replace("every: 60s", "every: *a8"),
                             ":1: a0: YAML anchor &a0 is not allowed: write the value out in full"),
    "alias bomb in to:": (GOOD.replace('to: ["jsonl:out/briefs.jsonl"]', "to: [*a8]"),
                          ":8: routes[0].to[0]: YAML alias *a8 is not allowed: write the value out in full"),
    "second top-level feeds:": (GOOD + "feeds:\n  - {name: other, url: 'https://example.org/b.xml'}\n",
                                ":9: feeds: duplicate key 'feeds': it is already set above in the same mapping"),
    "duplicate topic name": (GOOD.replace("feeds:", "  tariff:\n    label: {en: T, zh: T}\n    keywords: [x]\nfeeds:"),
                             ":5: topics.tariff: duplicate key 'tariff': it is already set above in the same mapping"),
    "duplicate feed name": (GOOD.replace("routes:", "  - {name: wire, url: 'https://example.org/b.xml'}\nroutes:"),
                            ":7: feeds[1].name: duplicate name 'wire': each feed needs its own"),
    "cron that never fires": (GOOD + 'digests:\n  - {name: d, cron: "0 8 30 2 *", to: [console]}\n',
                              ":10: digests[0].cron: cron '0 8 30 2 *' never fires: none of its months has that day"),
    "Arabic-Indic digits in cron": (GOOD + 'digests:\n  - {name: d, cron: "٠ ٨ * * *", to: [console]}\n',
                                    ":10: digests[0].cron: cron '٠ ٨ * * *' must be written in ASCII (digits 0-9, "
                                    "names like mon or jan)"),
    "feed port 99999": (GOOD.replace("example.org/", "example.org:99999/"),
                        ":6: feeds[0].url: feed 'wire': port 99999 is out of range (1-65535)"),
    "feed port abc": (GOOD.replace("example.org/", "example.org:abc/"),
                      ":6: feeds[0].url: feed 'wire': port 'abc' is not a number"),
    "feed host with a space": (GOOD.replace("example.org/", "exa mple.org/"),
                               ":6: feeds[0].url: feed 'wire': host 'exa mple.org' contains a space"),
}


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (CHILD_MEMORY, CHILD_MEMORY))


def briefbot(tmp_path: Path, *args: str, limit_memory: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "BRIEFBOT_CONFIG": str(tmp_path / "feeds.yaml"),
           "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite", "METRICS_PORT": str(free_port())}
    return subprocess.run([sys.executable, "-m", "bot", *args], env=env, capture_output=True, text=True, timeout=60,
                          preexec_fn=_limit_memory if limit_memory else None)


def cli_main(monkeypatch, capsys, tmp_path: Path, *args: str) -> tuple[int, str, str]:
    """`briefbot ARGS` in this process (the same main() the console script runs): exit code, stdout, stderr."""
    from bot import cli
    # main() would replace the test's log handlers with its own stderr handler.
    monkeypatch.setattr(cli, "setup_logging", lambda *a, **k: None)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/db.sqlite")
    code = cli.main(["--config", str(tmp_path / "feeds.yaml"), *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("name", [pytest.param(name, marks=pytest.mark.fault(f"config: {name}")) for name in CASES])
def test_check_refuses_with_one_located_line(tmp_path, monkeypatch, capsys, name):
    text, expected = CASES[name]
    config = tmp_path / "feeds.yaml"
    config.write_text(text, encoding="utf-8")
    assert cli_main(monkeypatch, capsys, tmp_path, "check") == (2, "", f"briefbot: config error: {config}{expected}\n")


@pytest.mark.fault("config: alias bomb given to every command")
def test_every_command_refuses_the_alias_bomb_with_exit_2(tmp_path, monkeypatch, capsys):
    text, expected = CASES["alias bomb in every:"]
    config = tmp_path / "feeds.yaml"
    config.write_text(text, encoding="utf-8")
    refusal = f"briefbot: config error: {config}{expected}\n"
    # As processes: `check` limited to 400 MB (the bomb expanded would need gigabytes), and `run`.
    for command in (["check"], ["run"]):
        done = briefbot(tmp_path, *command, limit_memory=command == ["check"])
        assert (done.returncode, done.stdout, done.stderr) == (2, "", refusal), command
    for command in (["poll", "--once"], ["brief", "tariff"], ["search", "tariff"], ["feeds"], ["digest"], ["stats"],
                    ["outbox"], ["discord-sync"]):
        assert cli_main(monkeypatch, capsys, tmp_path, *command) == (2, "", refusal), command
    assert not (tmp_path / "db.sqlite").exists()  # nothing started


# --------------------------------------------------------------------------- a running bot


class StderrLines:
    """The JSON log lines of a running `briefbot run`, collected by a thread as they are written."""

    def __init__(self, proc: subprocess.Popen):
        self.raw: list[str] = []
        self._proc = proc
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        for line in self._proc.stderr:
            self.raw.append(line)

    def messages(self, text: str) -> list[str]:
        found = []
        for line in list(self.raw):
            try:
                message = json.loads(line).get("msg", "")
            except ValueError:
                continue
            if text in message:
                found.append(message)
        return found

    def wait_for(self, text: str, count: int = 1) -> list[str]:
        def seen():
            assert self._proc.poll() is None, f"briefbot exited with {self._proc.returncode}: {''.join(self.raw)[-2000:]}"
            return self.messages(text) if len(self.messages(text)) >= count else None
        return wait_until(seen, f"{count} log line(s) containing {text!r}")

    def finish(self) -> str:
        self._thread.join(timeout=30)
        return "".join(self.raw)


def healthz(port: str) -> int:
    import urllib.request
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as resp:
        return resp.status


@pytest.mark.fault("config: hostile files sent to a running bot by SIGHUP")
def test_sighup_with_hostile_files_keeps_the_bot_and_its_config(server, tmp_path):
    server.route("/a.xml", Reply(200, rss([healthy_entry("a", 71)]), content_type=RSS))
    server.route("/b.xml", Reply(200, rss([healthy_entry("b", 72)]), content_type=RSS))
    config, out = tmp_path / "feeds.yaml", tmp_path / "out" / "briefs.jsonl"
    config.write_text(config_text({"a": server.url("/a.xml")}), encoding="utf-8")
    port = str(free_port())
    env = {**os.environ, "BRIEFBOT_CONFIG": str(config), "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite",
           "BRIEFBOT_ALLOW_PRIVATE_URLS": "1", "BRIEFBOT_LOG_LEVEL": "INFO", "METRICS_PORT": port}
    proc = subprocess.Popen([sys.executable, "-m", "bot", "run"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    logs = StderrLines(proc)
    hostile = ["alias bomb in every:", "500 levels of nesting", "every: .inf", "second top-level feeds:",
               "feed port 99999"]
    try:
        logs.wait_for("health and metrics on")
        wait_until(lambda: len(lines(out)) == 1, "feed a's brief")
        for name in hostile:
            text, expected = CASES[name]
            config.write_text(text.replace("https://example.org/rss.xml", server.url("/a.xml")), encoding="utf-8")
            proc.send_signal(signal.SIGHUP)
            # The whole message is the refusal line: nothing before it, nothing after it.
            assert logs.wait_for(f"{REFUSED}: {config}{expected}")[0] == f"{REFUSED}: {config}{expected}"
            assert healthz(port) == 200
        # Fixed, with a second feed: applied and polled; nothing of the first feed lost or repeated.
        config.write_text(config_text({"a": server.url("/a.xml"), "b": server.url("/b.xml")}), encoding="utf-8")
        proc.send_signal(signal.SIGHUP)
        logs.wait_for("config reloaded from")
        wait_until(lambda: len(lines(out)) == 2, "feed b's brief after the fixed reload")
        assert healthz(port) == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    err = logs.finish()
    assert proc.returncode == 0, err[-3000:]
    assert "Traceback" not in err and "Exception in callback" not in err and "exc_info" not in err
    assert all(line.startswith("{") for line in err.splitlines())  # every log record is one JSON line
    assert sorted(b["sources"][0]["feed"] for b in lines(out)) == ["a", "b"]


async def get_healthz(port: int) -> int:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{port}/healthz", timeout=aiohttp.ClientTimeout(total=5)) as resp:
            return resp.status


@pytest.fixture
async def running_bot(server, tmp_path, db_url):
    server.route("/a.xml", Reply(200, rss([healthy_entry("a", 81)]), content_type=RSS))
    config = tmp_path / "feeds.yaml"
    config.write_text(config_text({"a": server.url("/a.xml")}), encoding="utf-8")
    port = free_port()
    app = build_app(load_config(config, parse_target), make_env(db_url, metrics_port=port))
    runner = BotRunner(app)
    await runner.start()
    await async_wait_until(lambda: len(lines(tmp_path / "out" / "briefs.jsonl")) == 1, "feed a's brief")
    try:
        yield runner, config, port
    finally:
        await runner.stop()
        await close_app(app)


@pytest.mark.fault("config: alias bomb read while /healthz is asked")
async def test_healthz_answers_while_a_hostile_reload_is_read(running_bot, monkeypatch, caplog):
    runner, config, port = running_bot
    reading, release = threading.Event(), threading.Event()
    real_load = loading_module.load_config

    def slow_load(*args, **kwargs):
        # Holds the reload inside its read until the test has asked /healthz: proof that the
        # reading does not hold the event loop.
        reading.set()
        assert release.wait(30), "the test never released the reload"
        return real_load(*args, **kwargs)

    monkeypatch.setattr(loading_module, "load_config", slow_load)
    caplog.set_level(logging.INFO, logger="briefbot")
    config.write_text(BOMB + config.read_text(encoding="utf-8"), encoding="utf-8")
    reload = asyncio.create_task(runner.reload_config())
    await asyncio.to_thread(reading.wait, 30)
    assert not reload.done()
    assert await get_healthz(port) == 200  # answered while the file is being read
    release.set()
    assert await reload is False
    assert [r.getMessage() for r in caplog.records if REFUSED in r.getMessage()] == [
        f"{REFUSED}: {config}:1: a0: YAML anchor &a0 is not allowed: write the value out in full"]
    assert [f.name for f in runner.app.settings.feeds] == ["a"]
    assert {j.id for j in runner.scheduler.get_jobs() if j.id.startswith("poll:")} == {"poll:a"}
    assert await get_healthz(port) == 200


@pytest.mark.fault("config: reload raises an unexpected exception under SIGHUP")
async def test_sighup_reload_exception_is_one_line_not_a_callback_traceback(running_bot, monkeypatch, caplog):
    runner, config, port = running_bot

    def broken_load(*args, **kwargs):
        raise MemoryError("the document is too big")

    monkeypatch.setattr(loading_module, "load_config", broken_load)
    caplog.set_level(logging.INFO)
    loop = asyncio.get_running_loop()
    unhandled: list[dict] = []
    loop.set_exception_handler(lambda _loop, context: unhandled.append(context))
    loop.add_signal_handler(signal.SIGHUP, runner.request_reload)
    try:
        os.kill(os.getpid(), signal.SIGHUP)
        await async_wait_until(lambda: any(REFUSED in r.getMessage() for r in caplog.records), "the refusal")
        await async_wait_until(lambda: not runner._reloads, "the reload task to end")
    finally:
        loop.remove_signal_handler(signal.SIGHUP)
        loop.set_exception_handler(None)
    refused = [r for r in caplog.records if REFUSED in r.getMessage()]
    assert [r.getMessage() for r in refused] == [f"{REFUSED}: {config}: MemoryError: the document is too big"]
    assert refused[0].exc_info is None and unhandled == []
    assert not [r for r in caplog.records if r.name == "asyncio"]
    assert [f.name for f in runner.app.settings.feeds] == ["a"] and await get_healthz(port) == 200
