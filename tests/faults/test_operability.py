"""`briefbot run` as on-call people see it: /healthz and /metrics, JSON logs with ids, and a
graceful SIGTERM that leaves nothing half-done. Real subprocesses against loopback servers."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from bot.store import Store
from faults.support import DropProxy, free_port, healthy_entry, lines
from fakes.slack_api import BOT_TOKEN, FakeSlack
from feedgen import Entry, rss
from loopback import Reply
from waits import wait_until

RSS = "application/rss+xml"
TOPICS = ("topics:\n  rare-earth:\n    label: {en: Rare earths, zh: 稀土}\n    keywords: [antimony, rare earth]\n")


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def wait_for(predicate, proc: subprocess.Popen, timeout: float = 30.0):
    """Wait until `predicate()` returns something truthy, failing at once if briefbot exits."""
    def check():
        assert proc.poll() is None, f"briefbot exited early with {proc.returncode}"
        try:
            return predicate()
        except (OSError, ValueError):
            return None

    return wait_until(check, "briefbot to get there", timeout)


def start_bot(tmp_path: Path, config: str, **env) -> tuple[subprocess.Popen, dict]:
    path = tmp_path / "feeds.yaml"
    path.write_text(config, encoding="utf-8")
    environ = {**os.environ, "BRIEFBOT_CONFIG": str(path), "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite",
               "BRIEFBOT_ALLOW_PRIVATE_URLS": "1", "BRIEFBOT_LOG_LEVEL": "INFO", "METRICS_PORT": str(free_port()),
               **env}
    proc = subprocess.Popen([sys.executable, "-m", "bot", "run"], env=environ, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    return proc, environ


def stop_bot(proc: subprocess.Popen) -> str:
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err[-3000:]
    return err


def sample(metrics_text: str, name: str, **labels) -> float:
    """The value of one sample in Prometheus text format (0 when absent)."""
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))  # exposition sorts label names
    pattern = re.escape(name) + (r"\{" + re.escape(want) + r"\}" if want else "") + r" ([0-9.e+-]+)$"
    match = re.search(pattern, metrics_text, re.M)
    return float(match.group(1)) if match else 0.0


def test_health_metrics_and_json_logs(server, tmp_path):
    server.route("/ok.xml", Reply(200, rss([healthy_entry("ops", 61)]), content_type=RSS))
    server.route("/broken.xml", Reply(500, b"oops", content_type="text/plain"))
    (tmp_path / "blocked").write_text("a file where a directory should be")
    config = (TOPICS + "feeds:\n"
              f'  - {{name: ok-wire, url: "{server.url("/ok.xml")}", every: 60s}}\n'
              f'  - {{name: broken-wire, url: "{server.url("/broken.xml")}", every: 60s}}\n'
              'routes:\n  - {name: all, to: ["jsonl:out/briefs.jsonl", "jsonl:blocked/briefs.jsonl"]}\n'
              'digests:\n  - {name: hourly, cron: "0 * * * *", to: ["jsonl:out/digests.jsonl"]}\n')
    proc, env = start_bot(tmp_path, config)
    port = env["METRICS_PORT"]
    try:
        health = wait_for(lambda: (lambda s, b: json.loads(b) if s == 200 and json.loads(b)
                                   ["last_successful_poll_age_seconds"] is not None else None)(
            *_get(f"http://127.0.0.1:{port}/healthz")), proc)
        wait_for(lambda: lines(tmp_path / "out" / "briefs.jsonl"), proc)
        wait_for(lambda: lines(tmp_path / "out" / "digests.jsonl"), proc)

        def metrics_after_both_polls():
            # Feeds start at random offsets within their first interval: wait for the broken one too.
            code, body = _get(f"http://127.0.0.1:{port}/metrics")
            return (code, body) if code == 200 and sample(body, "briefbot_polls_total", outcome="error") else None

        status, text = wait_for(metrics_after_both_polls, proc)
    finally:
        err = stop_bot(proc)

    assert health["status"] == "ok" and health["database"] == "ok"
    assert 0 <= health["last_successful_poll_age_seconds"] < health["stale_after_seconds"]
    assert status == 200
    for family in ("briefbot_polls_total", "briefbot_fetch_errors_total", "briefbot_items_total",
                   "briefbot_briefs_total", "briefbot_llm_calls_total", "briefbot_llm_tokens_total",
                   "briefbot_llm_latency_seconds", "briefbot_grounding_rejections_total", "briefbot_deliveries_total",
                   "briefbot_outbox_backlog", "briefbot_digest_runs_total",
                   "briefbot_last_successful_poll_timestamp_seconds"):
        assert f"# TYPE {family.removesuffix('_total')} " in text or f"# TYPE {family} " in text, family
    assert sample(text, "briefbot_polls_total", outcome="ok") >= 1
    assert sample(text, "briefbot_polls_total", outcome="error") >= 1
    assert sample(text, "briefbot_fetch_errors_total", kind="server-error") >= 1
    assert sample(text, "briefbot_items_total", outcome="briefed") >= 1
    assert sample(text, "briefbot_briefs_total", mode="extractive") >= 1
    assert sample(text, "briefbot_deliveries_total", target="jsonl", outcome="sent") >= 1
    assert sample(text, "briefbot_deliveries_total", target="jsonl", outcome="retry") >= 1
    assert sample(text, "briefbot_outbox_backlog") >= 1  # the blocked jsonl target's row waits
    assert sample(text, "briefbot_digest_runs_total", outcome="posted") == 1

    # stderr is a pipe, not a TTY: every line is JSON, and the context fields name feed, brief, target.
    records = [json.loads(line) for line in err.splitlines() if line.strip()]
    assert records and all({"ts", "level", "logger", "msg"} <= set(r) for r in records)
    assert any(r.get("feed") == "broken-wire" and r["level"] == "warning" and "500" in r["msg"] for r in records)
    assert any(r.get("feed") == "ok-wire" and r.get("brief_id") for r in records)
    # jsonl targets are shown resolved against feeds.yaml's directory.
    assert any(str(r.get("target")).startswith("jsonl:/") and r["target"].endswith("/blocked/briefs.jsonl")
               and r.get("brief_id") and r["level"] == "warning"
               for r in records)
    assert any("shutting down" in r["msg"] for r in records)


def _entries(n: int) -> list[Entry]:
    return [Entry(f"Antimony lot {i} cleared for export ({900 + i} tonnes)",
                  f"Regulators cleared antimony lot {i} of {900 + i} tonnes at {30000 + i} dollars per tonne.",
                  guid=f"lot-{i}", link=f"https://wire.example/lot/{i}") for i in range(n)]


@pytest.mark.fault("process: SIGTERM during a poll + deliver cycle")
def test_sigterm_mid_cycle_exits_cleanly_and_loses_nothing(server, tmp_path):
    items = 6
    # The feed's reply is held until SIGTERM has landed (the poll is in flight then), and Slack is
    # slow (so may the deliveries be).
    release_feed = threading.Event()
    server.route("/slow.xml", Reply(200, rss(_entries(items)), content_type=RSS, hold=release_feed))
    config = (TOPICS + f'feeds:\n  - {{name: slow-wire, url: "{server.url("/slow.xml")}", every: 60s}}\n'
              'routes:\n  - {name: all, to: ["slack:C0BRIEFS1", "jsonl:out/briefs.jsonl"]}\n')
    with FakeSlack() as slack, DropProxy(slack.api_url.rstrip("/").removesuffix("/api")) as proxy:
        proxy.delays["/api/chat.postMessage"] = 0.3
        proc, env = start_bot(tmp_path, config, SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_API_BASE_URL=proxy.base_url + "/api/")
        err_lines: list[str] = []
        reader = threading.Thread(target=lambda: err_lines.extend(iter(proc.stderr.readline, "")), daemon=True)
        reader.start()
        terminated = False
        try:
            wait_for(lambda: server.requests_to("/slow.xml"), proc)  # the poll waits for the held feed
            proc.send_signal(signal.SIGTERM)
            terminated = True
            # SIGTERM landed mid-poll: the runner says it lets the job finish; only then the feed answers.
            wait_until(lambda: any("in-flight job" in line for line in err_lines), "the bot to wait for its poll")
        finally:
            release_feed.set()
            if not terminated:
                proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
            reader.join(timeout=30)
        err = "".join(err_lines)
        assert proc.returncode == 0, err[-3000:]
        store = Store(env["DATABASE_URL"])
        rows = store.outbox_rows()
        # Nothing half-done: the in-flight poll finished (briefs + outbox rows in one go) and every row
        # is either sent or still pending - none lost, none stuck as failed.
        assert store.count_briefs() == items and len(rows) == 2 * items
        assert {r.status for r in rows} <= {"sent", "pending"}
        sent_slack = [r for r in rows if r.target.startswith("slack") and r.status == "sent"]
        assert len(slack.posted("C0BRIEFS1")) == len(sent_slack)

        # A restart delivers whatever is left, exactly once.
        done = subprocess.run([sys.executable, "-m", "bot", "poll", "--once"], env=env, capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 0, done.stderr[-3000:]
        assert {r.status for r in store.outbox_rows()} == {"sent"}
        keys = [m["metadata"]["event_payload"]["key"] for m in slack.posted("C0BRIEFS1")]
        assert len(keys) == items == len(set(keys))
        ids = [b["id"] for b in lines(tmp_path / "out" / "briefs.jsonl")]
        assert len(ids) == items == len(set(ids))
        store.close()
