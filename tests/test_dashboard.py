"""The dashboard over HTTP, as curl and scripts see it: login, sessions, Bearer, CSRF refusal, the
loopback-only rule without a token, security headers, and what each page says (feeds, searches in
Chinese, a brief's deliveries, filters, retry, digests), never showing a secret."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import zipfile
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from feedgen import Entry, rss
from loopback import Reply
from pg import any_db_url, pg_server, pg_url  # noqa: F401  (pytest fixtures)
from test_dashboard_support import (TARGETS, TOKEN, WEBHOOK_SECRET, BotHttpServer, Client, make_app, make_brief, save, seed,
                                    utc_now)
from test_wheel_install import build_wheel
from waits import wait_until

from bot.web.access import Access, is_loopback
from bot.web.throttle import FAILURES_ALLOWED, MAX_ADDRESSES, WINDOW_SECONDS, FailedLogins

ROOT = Path(__file__).resolve().parents[1]
RUN_CONFIG = """
topics:
  tariff:
    label: {{en: Tariffs, zh: 关税}}
    keywords: [tariff]
feeds:
  - {{name: alpha-wire, url: "{url}"}}
  - {{name: beta-wire, url: "{url}?b"}}
routes:
  - {{name: all, to: ["jsonl:out.jsonl"]}}
"""


@pytest.fixture
def dashboard(tmp_path, db_url):
    app = make_app(tmp_path, db_url, BRIEFBOT_WEB_TOKEN=TOKEN, bind="0.0.0.0")
    seeded = seed(app.store, utc_now())
    with BotHttpServer(app) as server:
        yield server, seeded


def test_without_credentials_pages_redirect_to_login_and_scripts_get_401(dashboard):
    server, _ = dashboard
    client = Client(server.port)
    for path in ("/", "/briefs", "/deliveries", "/digests", "/subscriptions"):
        reply = client.get(path)
        assert reply.status == 303, path
        assert reply.headers["Location"] == f"/login?next={quote(path, safe='')}"
    assert client.get("/", headers={"Authorization": "Bearer wrong-token-123"}).status == 401
    assert client.post("/deliveries/1/retry", {"csrf": "x"}).status == 401
    # Health stays open on the same server.
    assert client.get("/healthz").status in (200, 503)


def test_bearer_token_gets_the_overview_listing_every_configured_feed(dashboard):
    server, _ = dashboard
    reply = Client(server.port).get("/", headers={"Authorization": f"Bearer {TOKEN}"})
    assert reply.status == 200
    names = re.findall(r'<td class="feed-name">([^<]+)</td>', reply.text)
    assert names == ["wire-en", "wire-zh", "quiet-feed"]
    assert TOKEN not in reply.text


def test_login_sets_an_httponly_strict_cookie_and_a_wrong_token_is_refused(dashboard):
    server, _ = dashboard
    client = Client(server.port)
    page = client.get("/login")
    wrong = client.post("/login", {"csrf": page.csrf(), "token": "not-the-token", "next": "/"})
    assert wrong.status == 403 and "That token is not the dashboard" in wrong.text
    reply = client.login()
    assert reply.status == 303 and reply.headers["Location"] == "/"
    cookie = next(v for v in reply.headers.get_all("Set-Cookie") if v.startswith("briefbot_session="))
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    overview = client.get("/")
    assert overview.status == 200 and "wire-zh" in overview.text


def test_login_form_without_its_csrf_token_is_refused(dashboard):
    server, _ = dashboard
    client = Client(server.port)
    client.get("/login")
    assert client.post("/login", {"token": TOKEN, "next": "/"}).status == 403
    assert client.get("/").status == 303  # still not logged in


def test_a_change_without_the_csrf_token_is_refused_and_changes_nothing(dashboard):
    server, seeded = dashboard
    client = Client(server.port)
    client.login()
    for form in ({}, {"csrf": "0" * 40}, {"csrf": ""}):
        reply = client.post(f"/deliveries/{seeded.failed_id}/retry", form)
        assert reply.status == 403 and "CSRF" in reply.text
    (row,) = [r for r in server.app.store.outbox_rows(status="failed")]
    assert row.id == seeded.failed_id
    # Another session's token is not this session's.
    other = Client(server.port)
    other.login()
    token = other.get("/deliveries").csrf()
    assert client.post(f"/deliveries/{seeded.failed_id}/retry", {"csrf": token}).status == 403


def test_retry_queues_the_failed_delivery_again(dashboard):
    server, seeded = dashboard
    client = Client(server.port)
    client.login()
    page = client.get("/deliveries?status=failed")
    assert f'id="retry-{seeded.failed_id}"' in page.text
    reply = client.post(f"/deliveries/{seeded.failed_id}/retry", {"csrf": page.csrf(), "next": "/deliveries"})
    assert reply.status == 303 and reply.headers["Location"] == f"/deliveries?retried={seeded.failed_id}"
    assert [r.id for r in server.app.store.outbox_rows(status="pending")] == [seeded.failed_id]
    # A row that has not failed is left as it is.
    again = client.post(f"/deliveries/{seeded.failed_id}/retry", {"csrf": page.csrf(), "next": "/deliveries"})
    assert again.headers["Location"] == f"/deliveries?not_failed={seeded.failed_id}"


def test_a_script_with_the_bearer_token_may_retry_without_a_form_token(dashboard):
    server, seeded = dashboard
    reply = Client(server.port).post(f"/deliveries/{seeded.failed_id}/retry", {},
                                     headers={"Authorization": f"Bearer {TOKEN}"})
    assert reply.status == 303
    assert server.app.store.outbox_rows(status="failed") == []


def test_every_page_sends_a_strict_policy_and_never_a_secret(dashboard):
    server, seeded = dashboard
    client = Client(server.port)
    client.login()
    for path in ("/", "/briefs", f"/briefs/{seeded.failed_brief}", "/deliveries", "/digests", "/subscriptions",
                 "/login"):
        reply = client.get(path)
        assert reply.status == 200, path
        policy = reply.headers["Content-Security-Policy"]
        assert "default-src 'none'" in policy and "script" not in policy and "unsafe" not in policy
        assert reply.headers["X-Frame-Options"] == "DENY"
        assert "<script" not in reply.text
        assert WEBHOOK_SECRET not in reply.text and TOKEN not in reply.text, path


def test_brief_page_lists_sources_and_deliveries_per_target_with_secrets_hidden(dashboard):
    server, seeded = dashboard
    client = Client(server.port)
    client.login()
    reply = client.get(f"/briefs/{seeded.failed_brief}")
    assert "Gallium export curbs widen" in reply.text and "镓出口管制扩大" in reply.text
    rows = re.findall(r'<tr class="delivery status-(\w+)" id="delivery-(\d+)">', reply.text)
    assert sorted(status for status, _ in rows) == ["failed", "sent"]
    assert "line-1" in reply.text  # the sent message's id
    assert "jsonl:out/briefs.jsonl" in reply.text and "[url hidden]" in reply.text
    assert client.get("/briefs/b_missing").status == 404


def test_a_token_an_api_echoes_in_an_error_is_hidden_even_when_the_bot_does_not_know_it(dashboard):
    server, seeded = dashboard
    server.app.store.outbox_failed(seeded.failed_id, "invalid_auth: token xoxb-1111-2222-unknownvalue was revoked")
    client = Client(server.port)
    client.login()
    for path in (f"/briefs/{seeded.failed_brief}", "/deliveries"):
        page = client.get(path).text
        assert "invalid_auth: token xoxb-[hidden] was revoked" in page, path
        assert "unknownvalue" not in page, path


def test_search_in_chinese_and_by_topic(dashboard):
    server, seeded = dashboard
    client = Client(server.port)
    client.login()
    found = client.get("/briefs?q=" + quote("关税上调"))
    ids = re.findall(r'<article class="brief" id="brief-([\w]+)"', found.text)
    tariff = {b.id for b in seeded.briefs if b.topics == ["tariff"]}
    assert set(ids) == tariff and ids
    by_topic = client.get("/briefs?topic=rare-earth")
    ids = re.findall(r'<article class="brief" id="brief-([\w]+)"', by_topic.text)
    assert set(ids) == {b.id for b in seeded.briefs if b.topics == ["rare-earth"]}
    assert client.get("/briefs?q=" + quote("稀土 nothing-like-this")).text.count('class="brief"') == 0


def test_delivery_filters(dashboard):
    server, seeded = dashboard
    client = Client(server.port)
    client.login()
    sent = client.get("/deliveries?status=sent&target=" + quote("jsonl:out/briefs.jsonl"))
    assert re.findall(r'id="delivery-(\d+)"', sent.text) and 'status-failed' not in sent.text
    bad = client.get("/deliveries?since=forever")
    assert bad.status == 200 and "since:" in bad.text


def test_chart_bars_match_the_stored_counts(dashboard):
    server, seeded = dashboard
    client = Client(server.port)
    client.login()
    text = client.get("/").text
    bars = re.findall(r'data-topic="([^"]+)" data-day="([^"]+)" data-count="(\d+)"', text)
    assert len(bars) == 2 * 14
    shown = {(topic, day): int(count) for topic, day, count in bars}
    for key, count in seeded.per_day.items():
        assert shown[key] == count, key
    assert sum(shown.values()) == sum(seeded.per_day.values())


def test_language_switch_keeps_the_page(dashboard):
    server, _ = dashboard
    client = Client(server.port)
    client.login()
    reply = client.get("/lang/zh?next=/briefs")
    assert reply.status == 303 and reply.headers["Location"] == "/briefs"
    assert "简报" in client.get("/briefs").text and ">搜索<" in client.get("/briefs").text
    assert client.get("/lang/en?next=https://evil.example/").headers["Location"] == "/"


def test_access_rule_without_a_token():
    assert not Access.from_token(None, "0.0.0.0").enabled
    assert Access.from_token(None, "127.0.0.1").enabled and Access.from_token(None, "::1").enabled
    assert Access.from_token("t" * 20, "0.0.0.0").enabled
    assert is_loopback("localhost") and not is_loopback("10.0.0.1")
    assert "dashboard off" in Access.from_token(None, "0.0.0.0").describe()


def test_without_a_token_the_running_bot_serves_no_dashboard_unless_on_loopback(tmp_path, db_url, caplog):
    app = make_app(tmp_path, db_url, bind="0.0.0.0")
    with caplog.at_level("INFO", logger="briefbot.dashboard"), BotHttpServer(app) as server:
        client = Client(server.port)
        assert client.get("/").status == 404
        assert client.get("/healthz").status in (200, 503)
    assert any("dashboard off" in r.getMessage() and "BRIEFBOT_BIND=127.0.0.1" in r.getMessage()
               for r in caplog.records)


def test_the_web_token_is_a_secret_kept_out_of_logs(tmp_path, db_url):
    app = make_app(tmp_path, db_url, BRIEFBOT_WEB_TOKEN=TOKEN)
    assert TOKEN in app.secrets()


def test_without_a_token_on_loopback_the_dashboard_needs_no_login(tmp_path, db_url, caplog):
    app = make_app(tmp_path, db_url, bind="127.0.0.1")
    seeded = seed(app.store, utc_now())
    with caplog.at_level("INFO", logger="briefbot.dashboard"), BotHttpServer(app) as server:
        client = Client(server.port)
        page = client.get("/deliveries")
        assert page.status == 200 and 'id="delivery-' in page.text
        # Forms still need the CSRF token of the visitor's session.
        assert client.post(f"/deliveries/{seeded.failed_id}/retry", {}).status == 403
        assert client.post(f"/deliveries/{seeded.failed_id}/retry", {"csrf": page.csrf()}).status == 303
        # A page elsewhere that rebinds its name to 127.0.0.1 is not answered.
        assert Client(server.port).get("/", headers={"Host": "attacker.example"}).status == 403
    assert any("without a login" in r.getMessage() for r in caplog.records)


def _cli(args: list[str], env: dict, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bot", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=ROOT)


def test_dashboard_command_refuses_to_serve_without_a_token_off_loopback(tmp_path):
    config = tmp_path / "feeds.yaml"
    config.write_text((ROOT / "feeds.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "BRIEFBOT_WEB_TOKEN"}
    env.update(DATABASE_URL=f"sqlite:///{tmp_path}/db.sqlite", BRIEFBOT_BIND="0.0.0.0")
    proc = _cli(["dashboard", "--config", str(config)], env)
    assert proc.returncode == 2
    assert "dashboard off" in proc.stderr and "BRIEFBOT_WEB_TOKEN" in proc.stderr
    assert "Traceback" not in proc.stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_briefbot_run_serves_the_overview_to_a_bearer_token_and_redirects_others(tmp_path, http_server):
    http_server.route("/feed.xml", Reply(200, rss([]), {"Content-Type": "application/rss+xml"}))
    config = tmp_path / "feeds.yaml"
    config.write_text(RUN_CONFIG.format(url=http_server.url("/feed.xml")), encoding="utf-8")
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite", "BRIEFBOT_WEB_TOKEN": TOKEN,
           "METRICS_PORT": str(port), "BRIEFBOT_BIND": "127.0.0.1", "BRIEFBOT_PARSE_WORKERS": "0"}
    proc = subprocess.Popen([sys.executable, "-m", "bot", "run", "--config", str(config)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        client = Client(port)

        def answering() -> bool:
            try:
                return client.get("/healthz").status in (200, 503)
            except OSError:
                return False

        wait_until(answering, "briefbot run to answer on its health port")
        overview = client.get("/", headers={"Authorization": f"Bearer {TOKEN}"})
        assert overview.status == 200
        assert re.findall(r'<td class="feed-name">([^<]+)</td>', overview.text) == ["alpha-wire", "beta-wire"]
        assert client.get("/").status == 303
        assert client.get("/", headers={"Authorization": "Bearer nope-nope-nope"}).status == 401
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert TOKEN not in err


def test_targets_shown_hide_webhook_tokens(dashboard):
    server, _ = dashboard
    client = Client(server.port)
    client.login()
    text = client.get("/deliveries").text
    assert "jsonl:out/briefs.jsonl" in text
    assert TARGETS[1] not in text and WEBHOOK_SECRET not in text


def test_the_wheel_ships_the_templates_and_the_stylesheet(tmp_path):
    wheel = build_wheel(tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())
    templates = {f"bot/web/templates/{p.name}" for p in (ROOT / "bot/web/templates").glob("*.html")}
    assert templates and templates <= names
    assert "bot/web/static/dashboard.css" in names


def _subscribe_feed(http_server) -> str:
    entries = [Entry("EU weighs tariff on Chinese magnets", "Brussels weighs a 25% tariff.", guid="s-1"),
               Entry("Rare earth prices climb", "NdPr rose 3%.", guid="s-2"),
               Entry("Football results", "Nothing on topic.", guid="s-3")]
    return http_server.route("/new.xml", Reply(200, rss(entries), {"Content-Type": "application/rss+xml"}))


def test_subscriptions_add_follow_and_remove_through_the_chat_service(tmp_path, db_url, http_server):
    url = _subscribe_feed(http_server)
    http_server.route("/page.html", Reply(200, b"<html><body>not a feed</body></html>", {"Content-Type": "text/html"}))
    app = make_app(tmp_path, db_url, BRIEFBOT_WEB_TOKEN=TOKEN)
    with BotHttpServer(app) as server:
        client = Client(server.port)
        client.login()
        page = client.get("/subscriptions")
        csrf = page.csrf()
        assert 'id="unsubscribe-' not in page.text  # feeds.yaml's feeds are not removable here
        assert WEBHOOK_SECRET not in page.text
        channel = re.search(r'<option value="([0-9a-f]{16})">jsonl:out/briefs.jsonl</option>', page.text).group(1)

        refused = client.post("/subscriptions", {"csrf": csrf, "action": "subscribe", "url": http_server.url("/page.html"),
                                                 "topics": "", "target": channel})
        assert refused.status == 303
        assert app.store.subscriptions() == []
        assert "not" in client.get(refused.headers["Location"]).text.lower()

        added = client.post("/subscriptions", {"csrf": csrf, "action": "subscribe", "url": url, "topics": "tariff",
                                               "target": channel})
        notice = client.get(added.headers["Location"])
        assert "Subscribed to" in notice.text
        (row,) = app.store.subscriptions()
        assert row.url == url and row.created_by == "dashboard" and row.target.endswith("out/briefs.jsonl")
        assert f'id="unsubscribe-{row.name}"' in notice.text

        typed = client.post("/subscriptions", {"csrf": csrf, "action": "follow", "topic": "rare-earth",
                                               "to": "jsonl:out/metals.jsonl", "target": channel})
        assert typed.status == 303
        assert any(f.topic == "rare-earth" and f.target.endswith("out/metals.jsonl") and f.created_by == "dashboard"
                   for f in app.store.follows())

        file_feed = client.post("/subscriptions", {"csrf": csrf, "action": "unsubscribe", "name": "wire-en"})
        assert "feeds.yaml" in client.get(file_feed.headers["Location"]).text
        removed = client.post("/subscriptions", {"csrf": csrf, "action": "unsubscribe", "name": row.name})
        assert "Unsubscribed" in client.get(removed.headers["Location"]).text
        assert app.store.subscriptions() == []
        assert client.post("/subscriptions", {"action": "unsubscribe", "name": "x"}).status == 403


def test_page_render_benchmark_runs_on_a_small_store(tmp_path):
    from bench import p9_dashboard

    (result,) = p9_dashboard.run(n=600, rounds=2, workdir=tmp_path, log=lambda *_: None)
    assert result.key == "P9" and result.data["briefs"] == 600
    assert set(result.data["p99_ms"]) == set(p9_dashboard._pages("x"))
    assert all(v > 0 for v in result.data["p99_ms"].values())


def test_a_search_reads_a_bounded_window_and_links_to_older_briefs(dashboard, monkeypatch):
    from bot.web import queries

    server, seeded = dashboard
    monkeypatch.setattr(queries, "SEARCH_WINDOW", 4)
    client = Client(server.port)
    client.login()
    wanted = {b.id for b in seeded.briefs if "关税上调" in b.title["zh"]}
    found, path, pages = set(), "/briefs?q=" + quote("关税上调"), 0
    while path and pages < 50:
        text = client.get(path).text
        found |= set(re.findall(r'<article class="brief" id="brief-([\w]+)"', text))
        older = re.search(r'<a id="older" href="([^"]+)"', text)
        path = older.group(1).replace("&amp;", "&") if older else None
        pages += 1
    assert found == wanted and pages > 2


def test_the_digest_preview_follows_new_stories(dashboard):
    server, _ = dashboard
    client = Client(server.port)
    client.login()
    before = client.get("/digests").text
    assert "Samarium magnet plant opens" not in before
    save(server.app.store, make_brief(990, "rare-earth", utc_now(), "Samarium magnet plant opens", "钐磁体工厂投产"))
    assert "Samarium magnet plant opens" in client.get("/digests").text


def test_the_digests_page_previews_every_digest_soonest_first(tmp_path, db_url):
    digests = [{"name": "evening", "cron": "0 18 * * *", "topics": ["tariff"], "to": ["jsonl:out/evening.jsonl"]},
               {"name": "morning", "cron": "0 8 * * *", "to": ["jsonl:out/morning.jsonl"]}]
    app = make_app(tmp_path, db_url, BRIEFBOT_WEB_TOKEN=TOKEN, digests=digests)
    now = utc_now()
    save(app.store, make_brief(991, "tariff", now, "Magnet tariff doubled", "磁体关税翻倍"))
    save(app.store, make_brief(992, "rare-earth", now, "Samarium plant opens", "钐工厂投产"))
    with BotHttpServer(app) as server:
        page = Client(server.port).get("/digests", headers={"Authorization": f"Bearer {TOKEN}"}).text

    def next_fire(hour: int) -> datetime:
        at = now.replace(hour=hour, minute=0, second=0, microsecond=0)
        return at if at > now else at + timedelta(days=1)

    previews = re.findall(r'<section class="digest-preview" id="digest-preview-(\w+)">(.*?)</section>', page, re.S)
    assert [name for name, _ in previews] == sorted(["evening", "morning"],
                                                    key=lambda n: next_fire(18 if n == "evening" else 8))
    shown = {name: re.findall(r'class="brief-link">([^<]+)</a>', html) for name, html in previews}
    assert shown["evening"] == ["Magnet tariff doubled"]  # its topics only
    assert sorted(shown["morning"]) == ["Magnet tariff doubled", "Samarium plant opens"]
    ids = re.findall(r' id="([^"]+)"', page)
    assert len(ids) == len(set(ids))  # the story in both digests has a card in each, under two ids


def _start_dashboard_command(tmp_path, config: Path) -> tuple[subprocess.Popen, Client]:
    """`briefbot dashboard` on a free loopback port without a token, and a client for it."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "BRIEFBOT_WEB_TOKEN"}
    env.update(DATABASE_URL=f"sqlite:///{tmp_path}/db.sqlite", BRIEFBOT_BIND="127.0.0.1")
    proc = subprocess.Popen([sys.executable, "-m", "bot", "dashboard", "--port", str(port), "--config", str(config)],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return proc, Client(port)


def test_dashboard_command_serves_on_loopback_without_a_token(tmp_path):
    config = tmp_path / "feeds.yaml"
    config.write_text(RUN_CONFIG.format(url="https://feeds.example/a.xml"), encoding="utf-8")
    proc, client = _start_dashboard_command(tmp_path, config)
    try:
        def overview():
            try:
                return client.get("/")
            except OSError:
                return None

        page = wait_until(overview, "briefbot dashboard to answer")
        assert page.status == 200
        assert re.findall(r'<td class="feed-name">([^<]+)</td>', page.text) == ["alpha-wire", "beta-wire"]
        assert client.get("/healthz").status == 404  # the dashboard alone
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and "without a login" in err


def test_dashboard_command_follows_changes_to_the_config_file(tmp_path):
    config = tmp_path / "feeds.yaml"
    config.write_text(RUN_CONFIG.format(url="https://feeds.example/a.xml"), encoding="utf-8")
    proc, client = _start_dashboard_command(tmp_path, config)

    def feed_names():
        try:
            return re.findall(r'<td class="feed-name">([^<]+)</td>', client.get("/").text)
        except OSError:
            return None

    def rewrite(text: str, stamp: int) -> None:
        config.write_text(text, encoding="utf-8")
        os.utime(config, (stamp, stamp))  # a new modification time even within the file system's granularity

    try:
        assert wait_until(feed_names, "briefbot dashboard to answer") == ["alpha-wire", "beta-wire"]
        grown = RUN_CONFIG.format(url="https://feeds.example/a.xml").replace(
            "routes:", '  - {name: gamma-wire, url: "https://feeds.example/g.xml"}\nroutes:')
        rewrite(grown, 2_000_000_000)
        assert feed_names() == ["alpha-wire", "beta-wire", "gamma-wire"]
        rewrite("feeds: [unclosed\n", 2_000_000_100)
        assert feed_names() == ["alpha-wire", "beta-wire", "gamma-wire"]  # the last good config
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0
    failures = [line for line in err.splitlines() if "config reload failed" in line]
    assert len(failures) == 1 and "feeds.yaml" in failures[0] and "Traceback" not in err


def test_every_page_on_sqlite_and_postgresql(tmp_path, any_db_url):
    app = make_app(tmp_path, any_db_url, BRIEFBOT_WEB_TOKEN=TOKEN)
    seeded = seed(app.store, utc_now())
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    with BotHttpServer(app) as server:
        client = Client(server.port)
        overview = client.get("/", headers=bearer).text
        bars = re.findall(r'data-topic="([^"]+)" data-day="([^"]+)" data-count="(\d+)"', overview)
        assert {(topic, day): int(n) for topic, day, n in bars if int(n)} == seeded.per_day
        found = client.get("/briefs?topic=tariff&q=" + quote("关税上调"), headers=bearer).text
        assert set(re.findall(r'id="brief-([\w]+)"', found)) == {b.id for b in seeded.briefs if b.topics == ["tariff"]}
        for path in (f"/briefs/{seeded.failed_brief}", "/deliveries?status=failed&since=1d", "/subscriptions"):
            assert client.get(path, headers=bearer).status == 200, path
        runs = client.get("/digests", headers=bearer).text
        assert re.findall(r'<tr><td>morning</td><td>[^<]+</td><td>[^<]+</td><td class="num">(\d+)</td></tr>', runs) == ["3"]
        assert client.post(f"/deliveries/{seeded.failed_id}/retry", {}, headers=bearer).status == 303
        assert [r.id for r in app.store.outbox_rows(status="pending")] == [seeded.failed_id]


def test_a_link_cannot_put_a_message_on_the_subscriptions_page(dashboard):
    server, _ = dashboard
    client = Client(server.port)
    client.login()
    forged = client.get("/subscriptions?done=" + quote("Your token expired, mail it to evil@example.com"))
    assert forged.status == 200 and "evil@example.com" not in forged.text


def test_sessions_are_signed_expire_and_end_when_the_token_changes():
    access = Access.from_token("a-long-web-token-1", "0.0.0.0")
    cookie = access.new_session("operator", now=1_000_000)
    assert access.read_session(cookie, now=1_000_001)[0] == "operator"
    assert access.read_session(cookie, now=1_000_000 + 13 * 3600) is None
    assert access.read_session(cookie.replace("operator", "guest", 1), now=1_000_001) is None
    guest = access.new_session("guest", now=1_000_000)
    assert access.read_session(guest.replace("guest", "operator", 1), now=1_000_001) is None
    assert Access.from_token("another-token-22", "0.0.0.0").read_session(cookie, now=1_000_001) is None
    session_id = access.read_session(cookie, now=1_000_001)[1]
    assert access.csrf_ok(session_id, access.csrf_token(session_id)) and not access.csrf_ok(session_id, "0" * 40)


def test_an_address_offering_too_many_wrong_tokens_is_refused_even_the_right_one(dashboard):
    server, _ = dashboard
    client = Client(server.port)
    for _ in range(FAILURES_ALLOWED):
        wrong = client.post("/login", {"csrf": client.get("/login").csrf(), "token": "guess-0000", "next": "/"})
        assert wrong.status == 403
    assert client.get("/", headers={"Authorization": f"Bearer {TOKEN}"}).status == 429
    locked = client.login()
    assert locked.status == 429 and "Too many wrong tokens" in locked.text
    assert 0 < int(locked.headers["Retry-After"]) <= WINDOW_SECONDS + 1
    # Pages that need no token still open.
    assert client.get("/login").status == 200


def test_failed_logins_age_out_and_a_right_token_clears_them():
    now = [1000.0]
    logins = FailedLogins(clock=lambda: now[0])
    for _ in range(FAILURES_ALLOWED - 1):
        logins.failed("192.0.2.7")
    assert logins.wait_seconds("192.0.2.7") == 0
    logins.failed("192.0.2.7")
    assert logins.wait_seconds("192.0.2.7") == WINDOW_SECONDS + 1
    assert logins.wait_seconds("198.51.100.1") == 0  # other addresses are not held back
    now[0] += WINDOW_SECONDS - 60
    assert logins.wait_seconds("192.0.2.7") == 61
    now[0] += 61
    assert logins.wait_seconds("192.0.2.7") == 0  # the first failure aged out of the window
    for _ in range(FAILURES_ALLOWED):
        logins.failed("192.0.2.8")
    logins.succeeded("192.0.2.8")
    assert logins.wait_seconds("192.0.2.8") == 0


def test_failed_logins_remember_a_bounded_number_of_addresses():
    logins = FailedLogins(clock=lambda: 0.0)
    for n in range(MAX_ADDRESSES + 50):
        for _ in range(FAILURES_ALLOWED):
            logins.failed(f"10.{n // 65536}.{n // 256 % 256}.{n % 256}")
    assert len(logins) == MAX_ADDRESSES
    assert logins.wait_seconds("10.0.0.0") == 0  # the oldest were forgotten first
    assert logins.wait_seconds(f"10.0.{(MAX_ADDRESSES + 49) // 256}.{(MAX_ADDRESSES + 49) % 256}") > 0
