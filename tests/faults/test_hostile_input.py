"""Hostile commands, a broken database and careless targets: each gets one clear line (or a usage
answer in chat), the documented exit code, and nothing is lost or written twice.

Exit codes: 0 ok, 1 the work failed (every feed failed), 2 usage or configuration, 3 database.
The command-line cases run `python -m bot` as a user would; the chat cases go through the real
Slack HTTP endpoint and the real Discord gateway session against the loopback fakes.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from test_discord_commands import EPHEMERAL, TOPICS, gateway_session, interaction_payload, invoke, option, responses
from test_slack_commands import BRIEFS, all_text, command_form, make_app, post_command

from bot.adapters.discord.deliver import set_api_base
from bot.adapters.slack.commands import start_slack
from bot.app.container import App
from bot.config import Env, Settings
from bot.store import ItemRecord, Store
from faults.support import closed_port_url, free_port, lines
from fakes.discord_api import FakeDiscord
from fakes.slack_api import FakeSlack
from feedgen import Entry, rss
from loopback import Reply
from storedata import save_brief

RSS = "application/rss+xml"
COMMANDS = [["run"], ["poll", "--once"], ["brief", "tariff"], ["search", "magnet"], ["feeds"], ["stats"],
            ["outbox"], ["digest"]]
USAGE_N = "the count must be a whole number from 1 to 20"


def config(tmp_path: Path, feeds: list[str] = (), targets: list[str] = ("jsonl:out/briefs.jsonl",)) -> Path:
    path = tmp_path / "feeds.yaml"
    feed_lines = "".join(f'\n  - {{name: wire{i}, url: "{url}"}}' for i, url in enumerate(feeds))
    path.write_text(f"""
topics:
  tariff:
    label: {{en: Tariffs, zh: 关税}}
    keywords: [tariff, 关税]
feeds:{feed_lines or " []"}
routes:
  - {{name: out, to: {json.dumps(list(targets))}}}
""", encoding="utf-8")
    return path


def cli_env(tmp_path: Path, database_url: str | None = None, **extra: str) -> dict:
    """The environment of a `briefbot` run on tmp_path's feeds.yaml (written if the test has not)."""
    path = tmp_path / "feeds.yaml"
    if not path.exists():
        config(tmp_path)
    database_url = database_url or f"sqlite:///{tmp_path}/db.sqlite"
    return {**os.environ, "BRIEFBOT_CONFIG": str(path), "DATABASE_URL": database_url, "BRIEFBOT_PARSE_WORKERS": "0",
            **extra}


def briefbot(*argv: str | bytes, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bot", *argv], capture_output=True, text=True, timeout=120,
                          env=env, errors="replace")


def briefbot_all(commands: list[list[str]], env: dict) -> list[tuple[list[str], int, str, str]]:
    """Run several commands at once (each its own process); (argv, exit code, stdout, stderr) each."""
    procs = [(argv, subprocess.Popen([sys.executable, "-m", "bot", *argv], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=env)) for argv in commands]
    out = []
    for argv, proc in procs:
        stdout, stderr = proc.communicate(timeout=120)
        out.append((argv, proc.returncode, stdout, stderr))
    return out


def one_line(text: str) -> str:
    assert "Traceback" not in text, text
    text_lines = text.strip().splitlines()
    assert len(text_lines) == 1, text
    return text_lines[0]


# --------------------------------------------------------------------------- a broken database

def damaged_database(tmp_path: Path, how: str) -> Path:
    path = tmp_path / "db.sqlite"
    store = Store(f"sqlite:///{path}")
    store.create()
    for i in range(20):
        store.ensure_feed(f"feed{i}", f"https://wire.example/{i}.xml")
    store.close()
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    if how == "truncated":
        with open(path, "r+b") as f:
            f.truncate(8192)
    else:
        path.write_bytes(os.urandom(20_000))
    return path


@pytest.mark.parametrize("how", [
    pytest.param("truncated", marks=pytest.mark.fault("store: database file truncated to 8192 bytes, every command")),
    pytest.param("random", marks=pytest.mark.fault("store: database file of random bytes, every command")),
])
def test_damaged_database_gives_one_line_and_exit_3_on_every_command(tmp_path, how):
    path = damaged_database(tmp_path, how)
    before = path.read_bytes()
    env = cli_env(tmp_path)
    problem = "database disk image is malformed" if how == "truncated" else "file is not a database"
    for argv, code, stdout, stderr in briefbot_all(COMMANDS, env):
        assert code == 3, (argv, stderr)
        assert one_line(stderr) == (f"briefbot: database error: database {path} is damaged ({problem}): restore "
                                    f"it from a backup, or move it aside (mv {path} {path}.broken) to start fresh")
        assert stdout == "", argv
    assert path.read_bytes() == before  # nothing written over what an operator may still recover


@pytest.mark.fault("store: PostgreSQL unreachable, every command")
def test_unreachable_postgresql_gives_one_line_without_credentials(tmp_path):
    port = free_port()
    env = cli_env(tmp_path, f"postgresql://briefuser:hunter2secret@127.0.0.1:{port}/briefbot")
    for argv, code, stdout, stderr in briefbot_all(COMMANDS, env):
        assert code == 3, (argv, stderr)
        line = one_line(stderr)
        where = f"postgresql://127.0.0.1:{port}/briefbot"
        assert line.startswith(f"briefbot: database error: cannot reach database {where} "), line
        assert line.endswith("check DATABASE_URL and that the server is running and accepts connections"), line
        assert "hunter2secret" not in line and "briefuser" not in line


@pytest.mark.fault("store: search words SQLite cannot run (999 terms, 50,000 characters, NUL, % and _)")
def test_store_search_refuses_what_sqlite_cannot_run_and_escapes_patterns(db_url):
    store = Store(db_url)
    store.create()
    try:
        for i, brief in enumerate(BRIEFS):
            assert save_brief(store, brief, item_of(brief, i), language="en", now=brief.created)
        for words, why in ([f"w{i}" for i in range(999)], "at most 64 words"), (["x" * 50_000], "characters"), \
                (["\x00"], "NUL"), (["\udcff"], "undecodable"):
            with pytest.raises(ValueError, match=why):
                store.search_briefs(words)
        # `%` and `_` are literal: as wildcards these would match "raises tariff".
        assert store.search_briefs(["raises%tariff"]) == [] and store.search_briefs(["t_riff"]) == []
        assert len(store.search_briefs(["25%"])) == 1
        assert [b.id for b in store.search_briefs(["gallium"])] == [BRIEFS[4].id]
    finally:
        store.close()


def item_of(brief, i: int) -> ItemRecord:
    return ItemRecord(feed="metals-wire", item_key=f"item-{i}", guid=f"g{i}", link=brief.primary_url,
                      link_key=brief.primary_url, content_key=None, title=brief.title["en"], published=brief.created,
                      status="briefed", topics=brief.topics)


# --------------------------------------------------------------------------- hostile command lines

@pytest.mark.parametrize("argv, expected", [
    pytest.param([b"search", b"\xff\xfe"], "briefbot search: the command contains a control character or "
                 "undecodable bytes; type plain words (see briefbot search --help)",
                 marks=pytest.mark.fault("cli: undecodable bytes in argv (search)")),
    pytest.param([b"brief", b"tariff\xff"], "briefbot brief: the command contains a control character or "
                 "undecodable bytes; type plain words (see briefbot brief --help)",
                 marks=pytest.mark.fault("cli: undecodable bytes in argv (brief)")),
    pytest.param(["search", *[f"w{i}" for i in range(999)]], "briefbot search: at most 20 words, got 999 "
                 "(see briefbot search --help)", marks=pytest.mark.fault("cli: search with 999 words")),
    pytest.param(["search", "x" * 50_000], "briefbot search: a word may have at most 100 characters, got one of "
                 "50000 (see briefbot search --help)", marks=pytest.mark.fault("cli: one 50,000-character word")),
    pytest.param(["brief", "tariff", "--limit", "0"], "briefbot brief: argument --limit: must be a whole number "
                 "from 1 to 20, got 0 (see briefbot brief --help)", marks=pytest.mark.fault("cli: brief --limit 0")),
    pytest.param(["brief", "tariff", "--limit=-5"], "briefbot brief: argument --limit: must be a whole number "
                 "from 1 to 20, got -5 (see briefbot brief --help)", marks=pytest.mark.fault("cli: brief --limit -5")),
    pytest.param(["--log-level", "foo", "feeds"], "briefbot: argument --log-level: log level 'foo' is not one of "
                 "DEBUG, INFO, WARNING, ERROR, CRITICAL (see briefbot --help)",
                 marks=pytest.mark.fault("cli: --log-level foo")),
])
def test_hostile_command_line_gets_one_usage_line_and_exit_2(tmp_path, argv, expected):
    proc = briefbot(*argv, env=cli_env(tmp_path))
    assert proc.returncode == 2, proc.stderr
    assert one_line(proc.stderr) == expected
    assert proc.stdout == ""


# --------------------------------------------------------------------------- polls

@pytest.mark.fault("poll: --once beaten to every lease by another worker")
def test_poll_beaten_to_every_lease_says_so(tmp_path, server):
    feeds = [server.url(f"/feed{i}.xml") for i in range(30)]
    config(tmp_path, feeds)
    store = Store(f"sqlite:///{tmp_path}/db.sqlite")
    store.create()
    names = [f"wire{i}" for i in range(30)]
    for name, url in zip(names, feeds):
        store.ensure_feed(name, url)
    # Another worker's poll holds every lease for the next hour.
    assert len(store.claim_feed_states(names, "other-host:4242", timedelta(hours=1), force=True)) == 30
    store.close()
    proc = briefbot("poll", "--once", env=cli_env(tmp_path))
    assert proc.returncode == 0, proc.stderr
    summary = [json.loads(x)["msg"] for x in proc.stderr.splitlines() if "polled" in x]
    assert summary == ["polled 0 feed(s): 0 new brief(s), 0 joined an existing story; "
                       "30 skipped because another worker held them"]
    assert server.requests == []


@pytest.mark.fault("poll: --once with every feed failing")
def test_poll_where_every_feed_failed_exits_1(tmp_path):
    config(tmp_path, [closed_port_url("/a.xml"), closed_port_url("/b.xml")])
    proc = briefbot("poll", "--once", env=cli_env(tmp_path))
    assert proc.returncode == 1, proc.stderr
    (summary,) = [json.loads(x) for x in proc.stderr.splitlines() if "polled" in x]
    assert summary["level"] == "error"
    assert summary["msg"].startswith("polled 2 feed(s): 0 new brief(s), 0 joined an existing story; 2 feed error(s): ")


# --------------------------------------------------------------------------- targets

@pytest.mark.fault("targets: one jsonl file written three ways")
def test_one_file_three_spellings_is_one_target(tmp_path, server):
    server.route("/feed.xml", Reply(200, rss([Entry("US tariff on magnets rises to 25%", "The tariff on magnets "
                                                    "rises to 25% from March, the trade office said.", guid="t1",
                                                    link="https://wire.example/t1")]), content_type=RSS))
    absolute = tmp_path / "out" / "briefs.jsonl"
    config(tmp_path, [server.url("/feed.xml")],
           targets=["jsonl:out/briefs.jsonl", "jsonl:./out/briefs.jsonl", f"jsonl:{absolute}"])
    env = cli_env(tmp_path)
    check = briefbot("check", env=env)
    assert check.returncode == 0, check.stderr
    poll = briefbot("poll", "--once", env=env)
    assert poll.returncode == 0, poll.stderr
    (written,) = lines(absolute)
    assert written["title"]["en"] == "US tariff on magnets rises to 25%"
    outbox = briefbot("outbox", env=env)
    (row,) = outbox.stdout.splitlines()
    assert f"jsonl:{absolute}" in row and " sent " in row


@pytest.mark.parametrize("webhook, reason", [
    pytest.param("http://127.0.0.1/api/webhooks/1/SECRETTOKEN", "must use https (a webhook URL carries its token)",
                 marks=pytest.mark.fault("targets: discord-webhook over plain http")),
    pytest.param("https://hooks.example.net/api/webhooks/1/SECRETTOKEN", "host hooks.example.net is not Discord's: "
                 "use discord.com or discordapp.com (or their ptb./canary. hosts), or set DISCORD_API_BASE_URL to "
                 "send elsewhere", marks=pytest.mark.fault("targets: discord-webhook on another host")),
])
def test_webhook_off_discord_is_refused_at_check(tmp_path, webhook, reason):
    path = config(tmp_path, targets=[f"discord-webhook:{webhook}"])
    proc = briefbot("check", env=cli_env(tmp_path))
    assert proc.returncode == 2
    line = one_line(proc.stderr)
    assert line.startswith(f"briefbot: config error: {path}:") and line.endswith(reason), line
    assert "SECRETTOKEN" not in line


def test_webhook_at_the_configured_api_base_is_accepted(tmp_path):
    config(tmp_path, targets=["discord-webhook:http://127.0.0.1:8765/api/webhooks/1/tok",
                              "discord-webhook:https://ptb.discord.com/api/webhooks/2/tok"])
    proc = briefbot("check", env=cli_env(tmp_path, DISCORD_API_BASE_URL="http://127.0.0.1:8765"))
    assert proc.returncode == 0, proc.stderr


# --------------------------------------------------------------------------- chat: the same grammar

SLACK_CASES = [
    pytest.param("search " + " ".join(f"w{i}" for i in range(1500)), "at most 20 words, got 1500",
                 marks=pytest.mark.fault("slack: /brief search with 1,500 words")),
    pytest.param("tariffs " + "9" * 5000, f"{USAGE_N}, got 999999999999… (5000 characters)",
                 marks=pytest.mark.fault("slack: /brief tariffs with a 5,000-digit count")),
    pytest.param("tariffs 0", f"{USAGE_N}, got 0", marks=pytest.mark.fault("slack: /brief tariffs 0")),
    pytest.param("tariffs -1 public", f"{USAGE_N}, got -1", marks=pytest.mark.fault("slack: /brief tariffs -1")),
    pytest.param("search \x00", "the command contains a control character or undecodable bytes",
                 marks=pytest.mark.fault("slack: /brief search NUL")),
]


@pytest.fixture
async def slack_endpoint(db_url):
    store = Store(db_url)
    store.create()
    for i, brief in enumerate(BRIEFS):
        assert save_brief(store, brief, item_of(brief, i), language="en", now=brief.created)
    with FakeSlack() as slack:
        runner = await start_slack(make_app(slack, store, db_url).adapter_context(), host="127.0.0.1")
        try:
            yield slack, runner
        finally:
            await runner.stop()
            store.close()


@pytest.mark.parametrize("text, problem", SLACK_CASES)
async def test_slack_answers_hostile_commands_with_usage(slack_endpoint, caplog, text, problem):
    caplog.set_level(logging.INFO)
    slack, runner = slack_endpoint
    status, _ = await post_command(runner.port, command_form(text, slack.response_url("hostile")))
    assert status == 200
    await slack.async_wait_for_responses(1)
    (answer,) = slack.responses
    shown = all_text(answer)
    assert problem in shown and "/brief search" in shown  # the reason, then the usage
    assert "Sorry" not in shown and "Unknown topic" not in shown
    assert answer["response_type"] == "ephemeral"
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


DISCORD_CASES = [
    pytest.param("search", option("words", " ".join(["ab"] * 60)), "at most 20 words, got 60",
                 marks=pytest.mark.fault("discord: /brief search with 60 words")),
    pytest.param("search", option("words", "gallium\x00"), "control character",
                 marks=pytest.mark.fault("discord: /brief search NUL")),
    pytest.param("latest", option("topic", "tariffs -1"), f"{USAGE_N}, got -1",
                 marks=pytest.mark.fault("discord: /brief latest topic 'tariffs -1'")),
]


@pytest.fixture
async def discord_session(db_url):
    """The bot's gateway session against the fake Discord, as `briefbot run` starts it."""
    fake = await FakeDiscord().start()
    store = Store(db_url)
    store.create()
    env = Env.from_environ({"DISCORD_BOT_TOKEN": fake.bot_token, "DISCORD_API_BASE_URL": fake.origin})
    app = App(settings=Settings.model_validate({"topics": TOPICS}), env=env, store=store)
    try:
        async with gateway_session(app, fake):
            yield fake
    finally:
        store.close()
        await fake.stop()
        set_api_base(None)


@pytest.mark.parametrize("subcommand, given, problem", DISCORD_CASES)
async def test_discord_answers_hostile_commands_with_usage(discord_session, caplog, subcommand, given, problem):
    caplog.set_level(logging.INFO)
    fake = discord_session
    payload = interaction_payload(subcommand, given)
    await invoke(fake, payload)
    callback, followups = responses(fake, payload)
    data = followups[0] if followups else callback["data"]
    assert problem in data["content"] and "/brief latest" in data["content"]
    assert data["flags"] == EPHEMERAL and not data.get("embeds")
    assert "Sorry" not in data["content"]
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
