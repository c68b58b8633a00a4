"""Security guarantees, tested through the real parts: SSRF at connect time, XML entities, Slack
request signatures, mentions and links in posted briefs, and secrets in logs, errors and replies."""

from __future__ import annotations

import argparse
import hashlib
import hmac
import io
import json
import logging
import re
import socket
import time
from urllib.parse import urlencode

import aiohttp
import pytest

from bot.app import cli_commands
from bot.config import Env, FetchConfig, Settings
from bot.adapters.discord.deliver import set_api_base
from bot.adapters.slack.deliver import SlackDeliverer
from bot.adapters.discord.commands import render_feeds as discord_render_feeds
from bot.ingest.fetch import Fetcher
from bot.ingest.netguard import BlockedAddress, GuardedResolver
from bot.ingest.parse import FeedParseError, parse_feed
from bot.app.logs import setup_logging
from bot.models import Brief, Source
from bot.app.container import App, build_app, close_app, default_registry, make_dispatcher, parse_target
from bot.commands import CommandService
from bot.adapters.slack.commands import render_feeds as slack_render_feeds, start_slack
from bot.store import ItemRecord, Store
from bot.summarise import Article
from bot.summarise.article import enrich_article
from faults.support import OPENAI_KEY, lines, poll_and_deliver
from fakes.discord_api import FakeDiscord
from fakes.openai_server import _error
from fakes.slack_api import BOT_TOKEN, FakeSlack, Scripted, mrkdwn_texts
from feedgen import Entry, make_env, make_settings, rss
from loopback import Reply
from storedata import save_brief

RSS = "application/rss+xml"
FEED_BODY = rss([Entry("Rare earth quota cut by 8%", "The rare earth quota was cut by 8% this year.", guid="s1",
                       link="https://wire.example/s1")])


def guarded_fetcher(**fetch) -> Fetcher:
    return Fetcher(FetchConfig(timeout="2s", **fetch), allow_private=False)


# --------------------------------------------------------------------------- SSRF

@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "2130706433", "0x7f000001", "127.1",
                                  "[::ffff:127.0.0.1]", "[::1]", "0.0.0.0"])
async def test_ssrf_every_spelling_of_loopback_is_refused_at_connect(server, host):
    server.route("/feed.xml", Reply(200, FEED_BODY, content_type=RSS))
    async with guarded_fetcher() as fetcher:
        result = await fetcher.fetch(f"http://{host}:{server.port}/feed.xml")
    assert result.status == "error" and result.error_kind == "blocked-private", result.error
    assert "non-public address" in result.error
    assert server.requests == []  # refused before any byte was sent


@pytest.fixture
def rebinding_dns(monkeypatch):
    """`rebind.test` answers a public address first, then loopback (a DNS-rebinding attacker);
    `mixed.test` answers both at once; `flip.test` answers loopback first, then a private address."""
    real = socket.getaddrinfo
    answers = {"rebind.test": [["93.184.215.14"], ["127.0.0.1"]], "mixed.test": [["93.184.215.14", "10.1.2.3"]],
               "flip.test": [["127.0.0.1"], ["10.1.2.3"]]}
    asked: list[str] = []

    def getaddrinfo(host, port, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else host
        if name not in answers:
            return real(host, port, *args, **kwargs)
        asked.append(name)
        ips = answers[name].pop(0) if len(answers[name]) > 1 else answers[name][0]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port or 80)) for ip in ips]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return asked


async def test_dns_rebinding_cannot_slip_a_private_address_past_the_check(rebinding_dns):
    resolver = GuardedResolver(allow_private=False)
    # First answer public: the connector is handed exactly the address that was checked, as a
    # numeric answer it will not look up again.
    first = await resolver.resolve("rebind.test", 80)
    assert [(r["host"], r["port"]) for r in first] == [("93.184.215.14", 80)]
    assert first[0]["flags"] & socket.AI_NUMERICHOST
    # Second answer loopback: refused; nothing is handed to the connector.
    with pytest.raises(BlockedAddress) as refused:
        await resolver.resolve("rebind.test", 80)
    assert refused.value.host == "rebind.test" and refused.value.address == "127.0.0.1"
    # Mixed answers (public + private) are refused outright, naming the private one.
    with pytest.raises(BlockedAddress) as mixed:
        await resolver.resolve("mixed.test", 80)
    assert mixed.value.address == "10.1.2.3"
    assert rebinding_dns == ["rebind.test", "rebind.test", "mixed.test"]  # one lookup per resolution


async def test_resolver_allowed_networks_and_literals():
    resolver = GuardedResolver(allow_private=False, allowed_networks=("127.0.0.0/8",))
    assert [r["host"] for r in await resolver.resolve("127.0.0.1", 80)] == ["127.0.0.1"]  # no DNS for literals
    assert resolver.is_allowed("127.9.9.9") and not resolver.is_allowed("10.0.0.1")
    with pytest.raises(BlockedAddress):
        await resolver.resolve("::1", 80)  # IPv6 loopback is not in the allowed IPv4 network
    # Legacy spellings of an IP literal are judged by the address they name.
    resolver.check_literal("2130706433")  # 127.0.0.1: allowed here
    with pytest.raises(BlockedAddress) as refused:
        resolver.check_literal("0x0a000001")
    assert refused.value.address == "10.0.0.1"
    resolver.check_literal("feeds.example.org")  # names are left to the resolver
    with pytest.raises(BlockedAddress):
        resolver.socket_factory((socket.AF_INET, socket.SOCK_STREAM, 6, "", ("169.254.169.254", 80)))


async def test_changed_dns_answer_is_vetted_again_on_the_next_connection(server, rebinding_dns):
    # flip.test first answers the test server's loopback address (allowed), then a private one.
    # The server closes each connection, so the second fetch needs a new one: no DNS cache may serve
    # the old, vetted answer, and the new answer is refused before any byte is sent.
    server.route("/feed.xml", Reply(200, FEED_BODY, content_type=RSS, headers={"Connection": "close"}))
    async with Fetcher(FetchConfig(timeout="2s"), allow_private=False, allowed_networks=("127.0.0.1/32",)) as f:
        first = await f.fetch(f"http://flip.test:{server.port}/feed.xml")
        second = await f.fetch(f"http://flip.test:{server.port}/feed.xml")
    assert first.status == "ok", first.error
    assert second.error_kind == "blocked-private"
    assert "flip.test resolves to non-public address 10.1.2.3" in second.error
    assert len(server.requests) == 1
    assert rebinding_dns == ["flip.test", "flip.test"]


async def test_mixed_public_and_private_answers_are_refused_end_to_end(server, rebinding_dns):
    async with guarded_fetcher() as fetcher:
        result = await fetcher.fetch(f"http://mixed.test:{server.port}/feed.xml")
    assert result.error_kind == "blocked-private" and "10.1.2.3" in result.error
    assert server.requests == []


async def test_hostname_resolving_to_loopback_is_refused_end_to_end(server, rebinding_dns):
    server.route("/feed.xml", Reply(200, FEED_BODY, content_type=RSS))
    async with guarded_fetcher() as fetcher:
        await fetcher.fetch(f"http://rebind.test:{server.port}/feed.xml")  # public answer: unreachable here
        second = await fetcher.fetch(f"http://rebind.test:{server.port}/feed.xml")
    assert second.error_kind == "blocked-private" and "127.0.0.1" in second.error
    assert server.requests == []


async def test_article_page_fetches_are_guarded_too(server):
    server.route("/page.html", Reply(200, b"<html><body><p>" + b"Secret internal page. " * 50 + b"</p></body></html>",
                                     content_type="text/html"))
    article = Article(feed="wire", url=server.url("/page.html"), title="Rare earth stub", text="Stub.", lang="en",
                      topics=["rare-earth"])
    async with guarded_fetcher() as fetcher:
        page = await fetcher.fetch_page(server.url("/page.html"))
        enriched = await enrich_article(article, fetcher, min_chars=400)
    assert page.error_kind == "blocked-private"
    assert enriched.text == "Stub."
    assert server.requests == []


async def test_redirect_from_allowed_host_to_metadata_is_refused(server):
    server.route("/page.html", Reply(302, b"", headers={"Location": "http://169.254.169.254/latest/meta-data/"}))
    async with Fetcher(FetchConfig(timeout="2s"), allow_private=False, allowed_networks=("127.0.0.1/32",)) as f:
        result = await f.fetch_page(server.url("/page.html"))
    assert result.error_kind == "blocked-private" and "169.254.169.254" in result.error


# --------------------------------------------------------------------------- XML

@pytest.mark.parametrize("doctype", [
    '<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>',
    '<!DOCTYPE rss [<!ENTITY xxe SYSTEM "{url}">]>',
    '<!DOCTYPE rss [<!ENTITY % remote SYSTEM "{url}"> %remote;]>',
    '<!DOCTYPE rss [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>',
])
@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
def test_xml_entity_declarations_are_refused(server, doctype, encoding):
    server.route("/xxe", Reply(200, b"<!ENTITY stolen 'x'>", content_type="text/plain"))
    text = (f'<?xml version="1.0" encoding="{encoding}"?>\n{doctype.format(url=server.url("/xxe"))}\n'
            '<rss version="2.0"><channel><title>t</title><item><title>rare earth &xxe;</title>'
            "<description>&xxe;</description></item></channel></rss>")
    with pytest.raises(FeedParseError, match="declares XML entities"):
        parse_feed(text.encode(encoding), RSS, "https://wire.example/feed.xml")
    assert server.requests == []


def test_external_dtd_is_never_fetched(server):
    server.route("/evil.dtd", Reply(200, b'<!ENTITY xxe "pwned">', content_type="application/xml-dtd"))
    body = (f'<?xml version="1.0"?><!DOCTYPE rss SYSTEM "{server.url("/evil.dtd")}">'
            '<rss version="2.0"><channel><title>t</title><item><title>Rare earth quota</title><link>'
            "https://wire.example/a</link><description>Quota cut.</description></item></channel></rss>").encode()
    parsed = parse_feed(body, RSS, "https://wire.example/feed.xml")
    assert [e.title for e in parsed.entries] == ["Rare earth quota"]
    assert server.requests == []


# --------------------------------------------------------------------------- Slack HTTP signatures

SIGNING_SECRET = "0123456789abcdef0123456789abcdef"


def _sign(body: str, timestamp: int, secret: str = SIGNING_SECRET) -> str:
    return "v0=" + hmac.new(secret.encode(), f"v0:{timestamp}:{body}".encode(), hashlib.sha256).hexdigest()


@pytest.fixture
async def slack_http(db_url):
    with FakeSlack() as slack:
        store = Store(db_url)
        store.create()
        settings = Settings.model_validate({"topics": {"rare-earth": {"label": {"en": "Rare earths", "zh": "稀土"},
                                                                      "keywords": ["rare earth"]}}})
        env = Env.from_environ({"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET,
                                "SLACK_API_BASE_URL": slack.api_url.rstrip("/"), "PORT": "0", "DATABASE_URL": db_url})
        runner = await start_slack(App(settings=settings, env=env, store=store).adapter_context(), host="127.0.0.1")
        try:
            yield slack, runner.port
        finally:
            await runner.stop()
            store.close()


async def _post(port: int, body: str, content_type: str, headers: dict[str, str]) -> int:
    async with aiohttp.ClientSession() as session:
        async with session.post(f"http://127.0.0.1:{port}/slack/events", data=body,
                                headers={"Content-Type": content_type, **headers}) as resp:
            return resp.status


@pytest.mark.parametrize("case", ["no headers", "future timestamp", "garbage timestamp", "wrong version",
                                  "unsigned event", "unsigned url_verification", "signed for another body"])
async def test_slack_http_rejects_every_unverified_request(slack_http, case):
    slack, port = slack_http
    now = int(time.time())
    command = urlencode({"command": "/brief", "text": "help", "team_id": "T0TEST001", "user_id": "U0X",
                         "channel_id": "C0BRIEFS1", "response_url": slack.response_url("sig"), "trigger_id": "1.2.3"})
    form = "application/x-www-form-urlencoded"
    if case == "no headers":
        status = await _post(port, command, form, {})
    elif case == "future timestamp":
        later = now + 6 * 60  # correctly signed, outside the 5-minute window the other way
        status = await _post(port, command, form, {"X-Slack-Request-Timestamp": str(later),
                                                   "X-Slack-Signature": _sign(command, later)})
    elif case == "garbage timestamp":
        status = await _post(port, command, form, {"X-Slack-Request-Timestamp": "yesterday",
                                                   "X-Slack-Signature": _sign(command, now)})
    elif case == "wrong version":
        status = await _post(port, command, form, {"X-Slack-Request-Timestamp": str(now),
                                                   "X-Slack-Signature": _sign(command, now).replace("v0=", "v1=")})
    elif case == "unsigned event":
        event = json.dumps({"type": "event_callback", "team_id": "T0TEST001",
                            "event": {"type": "app_mention", "text": "<@U0BOT0001> help", "channel": "C0BRIEFS1"}})
        status = await _post(port, event, "application/json", {"X-Slack-Request-Timestamp": str(now),
                                                                "X-Slack-Signature": "v0=" + "0" * 64})
    elif case == "unsigned url_verification":
        challenge = json.dumps({"type": "url_verification", "challenge": "abc", "token": "x"})
        status = await _post(port, challenge, "application/json", {})
    else:
        other = command.replace("help", "feeds")
        status = await _post(port, command, form, {"X-Slack-Request-Timestamp": str(now),
                                                   "X-Slack-Signature": _sign(other, now)})
    # Bolt answers a non-numeric timestamp with 500 (its verifier raises); refused all the same.
    assert status == (500 if case == "garbage timestamp" else 401)
    # A correctly signed command sent afterwards is answered; the refused request never is.
    later = urlencode({"command": "/brief", "text": "help", "team_id": "T0TEST001", "user_id": "U0X",
                       "channel_id": "C0BRIEFS1", "response_url": slack.response_url("later"), "trigger_id": "1.2.4"})
    assert await _post(port, later, form, {"X-Slack-Request-Timestamp": str(now),
                                           "X-Slack-Signature": _sign(later, now)}) == 200
    await slack.async_wait_for_responses(1)
    assert [r["_path"] for r in slack.responses] == ["/response/later"]


async def test_slack_http_accepts_a_correctly_signed_request(slack_http):
    slack, port = slack_http
    now = int(time.time())
    command = urlencode({"command": "/brief", "text": "help", "team_id": "T0TEST001", "user_id": "U0X",
                         "channel_id": "C0BRIEFS1", "response_url": slack.response_url("ok"), "trigger_id": "1.2.3"})
    status = await _post(port, command, "application/x-www-form-urlencoded",
                         {"X-Slack-Request-Timestamp": str(now), "X-Slack-Signature": _sign(command, now)})
    assert status == 200
    assert (await slack.async_wait_for_responses(1))[0]["_path"] == "/response/ok"


# --------------------------------------------------------------------------- mentions and links

HOSTILE = Entry(
    "<!channel> Rare earth export curbs widen <@U0ALL> [official list](https://evil.example/list)",
    "China widened rare earth export curbs to 7 more elements, see <https://evil.example/notice|the notice> and "
    "[the full list](https://evil.example/full). Details at https://evil.example/more and www.evil.example/x "
    "@everyone @here <!here> <@U12345> <#C999> <!subteam^S1>. Prices rose 4.5% to 615,000 yuan per tonne.",
    guid="hostile-1", link="https://wire.example/curbs")
SOURCE_URL = "https://wire.example/curbs"
MENTION_RE = re.compile(r"<[!@#]")




async def test_posted_briefs_ping_nobody_and_link_only_to_sources(server, tmp_path, db_url):
    server.route("/wire.xml", Reply(200, rss([HOSTILE]), content_type=RSS))
    channel = "123456789012345678"
    discord_api = await FakeDiscord().start()
    discord_api.add_channel(channel)
    try:
        with FakeSlack() as slack:
            settings = make_settings(tmp_path, [{"name": "wire", "url": server.url("/wire.xml")}],
                                     targets=["slack:C0BRIEFS1", f"discord:{channel}", "jsonl:out/briefs.jsonl"])
            app = build_app(settings, make_env(db_url, SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_API_BASE_URL=slack.api_url,
                                               DISCORD_BOT_TOKEN=discord_api.bot_token,
                                               DISCORD_API_BASE_URL=discord_api.origin))
            try:
                await poll_and_deliver(app)
            finally:
                await close_app(app)
            slack_call = slack.calls_to("chat.postMessage")[0].params
    finally:
        await discord_api.stop()
        set_api_base(None)
    assert len(lines(tmp_path / "out" / "briefs.jsonl")) == 1

    # Slack: the only <...> tokens are links to the source; no bare URL other than the source.
    header = slack_call["blocks"][0]["text"]
    assert header["type"] == "plain_text"  # never parsed for mentions or links
    texts = mrkdwn_texts(slack_call["blocks"]) + [slack_call["text"]]
    for text in texts:
        assert not MENTION_RE.search(text), text
        for token in re.findall(r"<([^>]*)>", text):
            assert token.startswith(SOURCE_URL + "|"), token
    for text in texts + [header["text"]]:
        assert set(re.findall(r"https?://[^\s|>)\]]+", text)) <= {SOURCE_URL}, text
        assert "www.evil.example" not in text
    assert slack_call["link_names"] is False

    # Discord: mentions disabled on the wire; masked links and URLs only to the source.
    payload = discord_api.messages[0]["payload"]
    assert payload["allowed_mentions"] == {"parse": []}
    flat = json.dumps(payload["embeds"], ensure_ascii=False)
    assert set(re.findall(r"https?://[^\s\"\\)\]]+", flat)) <= {SOURCE_URL}, flat
    assert "www.evil.example" not in flat


# --------------------------------------------------------------------------- secrets

@pytest.fixture
def product_logs():
    """Logs as `briefbot run` writes them (bot.app.logs.setup_logging), captured; restored afterwards."""
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    noisy = ("httpx", "httpcore", "apscheduler", "discord", "slack_bolt", "slack_sdk", "aiohttp.access", "openai",
             "trafilatura", "asyncio")
    saved_levels = {name: logging.getLogger(name).level for name in noisy}
    stream = io.StringIO()

    def setup(env: Env, level: str = "DEBUG") -> io.StringIO:
        setup_logging(level, secrets=env.secrets(default_registry().secret_env()), json_logs=True,
                      stream=stream)
        return stream

    yield setup
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in saved_handlers:
        root.addHandler(handler)
    root.setLevel(saved_level)
    for name, level in saved_levels.items():
        logging.getLogger(name).setLevel(level)


WEBHOOK_ID, WEBHOOK_TOKEN = "223456789012345678", "wh-Tok3n_secret-abcdef1234567890"
DISCORD_TOKEN = "discord-bot-token-secret-0123456789"
FEED_USER, FEED_PASS, FEED_KEY = "reader", "hunter2secret", "feedkey-00112233"


async def test_secrets_never_reach_logs_outbox_errors_or_feed_health(server, tmp_path, db_url, product_logs,
                                                                    fake_llm, capsys):
    # A feed whose URL carries credentials, failing; one good feed whose brief goes everywhere and fails.
    server.route("/secret.xml", Reply(500, b"boom", content_type="text/plain"))
    server.route("/wire.xml", Reply(200, rss([HOSTILE]), content_type=RSS))
    secret_feed = f"http://{FEED_USER}:{FEED_PASS}@127.0.0.1:{server.port}/secret.xml?key={FEED_KEY}"
    webhook = f"https://discord.com/api/webhooks/{WEBHOOK_ID}/{WEBHOOK_TOKEN}"
    channel = "123456789012345678"
    discord_api = await FakeDiscord(bot_token=DISCORD_TOKEN).start()
    discord_api.add_channel(channel)
    discord_api.add_webhook(WEBHOOK_ID, WEBHOOK_TOKEN)
    # Error replies that echo the credentials back, as some proxies and APIs do.
    discord_api.fail(f"/webhooks/{WEBHOOK_ID}/{WEBHOOK_TOKEN}", 400,
                     message=f"Invalid form body for webhook {WEBHOOK_TOKEN}")
    discord_api.fail(f"/channels/{channel}/messages", 400, message=f"Bad request (token {DISCORD_TOKEN})")
    fake_llm.queue(*[_error(401, f"Incorrect API key provided: {OPENAI_KEY}.", "invalid_request_error")] * 2)
    try:
        with FakeSlack() as slack:
            slack.script("chat.postMessage", Scripted(status=502, body=f"<html>bad gateway; Authorization: Bearer "
                                                      f"{BOT_TOKEN}</html>", content_type="text/html"))
            settings = make_settings(tmp_path, [{"name": "wire", "url": server.url("/wire.xml")},
                                                {"name": "secret", "url": secret_feed}],
                                     targets=["slack:C0BRIEFS1", f"discord:{channel}", f"discord-webhook:{webhook}"],
                                     llm={"max_retries": 0, "fetch_article_below_chars": 0, "timeout": "2s"})
            env = make_env(db_url, SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_API_BASE_URL=slack.api_url,
                           DISCORD_BOT_TOKEN=DISCORD_TOKEN, DISCORD_API_BASE_URL=discord_api.origin,
                           openai_api_key=OPENAI_KEY, openai_base_url=fake_llm.base_url, model="fake-mini")
            logs = product_logs(env)
            app = build_app(settings, env)
            app.deliverers["slack"] = SlackDeliverer(BOT_TOKEN, slack.api_url, settings=settings,
                                                     rate_limit_retries=0, server_error_retries=0)
            try:
                await poll_and_deliver(app)
            finally:
                await close_app(app)
    finally:
        await discord_api.stop()
        set_api_base(None)

    secrets = [OPENAI_KEY, BOT_TOKEN, DISCORD_TOKEN, WEBHOOK_TOKEN, FEED_PASS, FEED_KEY]
    outbox = app.store.outbox_rows()
    assert len(outbox) == 3 and all(r.status in ("pending", "failed") for r in outbox)
    assert all(r.last_error for r in outbox)
    logged = logs.getvalue()
    assert "Incorrect API key provided" in logged and "feed secret" in logged  # the failures were logged
    for line in logged.splitlines():
        json.loads(line)  # JSON lines (not a TTY)
    health = CommandService(settings, app.store).feeds_health()
    slack_text, slack_blocks = slack_render_feeds(health, "UTC")
    discord_replies = discord_render_feeds(health)
    cli_commands.feeds_command(argparse.Namespace(), settings, env)
    cli_out = capsys.readouterr().out
    assert "500" in cli_out
    exposed = {
        "logs": logged,
        "outbox errors": "\n".join(r.last_error for r in outbox),
        "outbox targets as shown": "\n".join(parse_target(r.target).redacted for r in outbox),
        "feed state": "\n".join(s.last_error or "" for s in app.store.feed_states()),
        "/brief feeds (Slack)": slack_text + json.dumps(slack_blocks, ensure_ascii=False),
        "/brief feeds (Discord)": json.dumps([r.__dict__ for r in discord_replies], default=str, ensure_ascii=False),
        "briefbot feeds": cli_out,
    }
    for where, text in exposed.items():
        for secret in secrets:
            assert secret not in text, f"{secret!r} leaked into {where}"


async def test_outbox_dispatcher_logs_webhook_targets_redacted(tmp_path, db_url, product_logs):
    """A delivery error from an unreachable webhook host: logged and stored without the token."""
    webhook = f"https://discord.com/api/webhooks/{WEBHOOK_ID}/{WEBHOOK_TOKEN}"
    settings = make_settings(tmp_path, [], targets=[f"discord-webhook:{webhook}"])
    env = make_env(db_url, DISCORD_API_BASE_URL=f"http://127.0.0.1:{_closed_port()}")
    logs = product_logs(env)
    app = build_app(settings, env)
    try:
        app.store.enqueue("brief", "b_missing", [f"discord-webhook:{webhook}"])
        brief = Brief(id="b_0000000000000001", topics=["rare-earth"], title={"en": "t", "zh": "t"},
                      summary={"en": "s", "zh": "s"}, mode="extractive",
                      sources=[Source(url="https://wire.example/x", feed="wire", title="t")])
        item = ItemRecord(feed="wire", item_key="k1", guid="g", link=None, link_key=None, content_key=None,
                          title="t", published=None, status="briefed", topics=["rare-earth"])
        assert save_brief(app.store, brief, item, [f"discord-webhook:{webhook}"], None, language="en")
        await make_dispatcher(app).dispatch_once()
    finally:
        await close_app(app)
    rows = {r.ref_id: r for r in app.store.outbox_rows()}
    assert rows["b_missing"].status == "failed"
    assert rows[brief.id].status == "pending" and "network error" in rows[brief.id].last_error
    text = logs.getvalue() + "\n".join(r.last_error for r in rows.values())
    assert WEBHOOK_TOKEN not in text and f"webhooks/{WEBHOOK_ID}/***" in logs.getvalue()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
