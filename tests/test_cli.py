"""The commands a user runs: demo (offline), poll --once, brief --json, feeds."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from feedgen import Entry, rss
from loopback import Reply


def run(args: list[str], env: dict | None = None, cwd=None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "bot", *args], capture_output=True, text=True, timeout=120,
                          env=full_env, cwd=cwd)


def test_demo_prints_bilingual_extractive_briefs_offline(tmp_path):
    # No network, no keys: the demo serves its bundled feeds on loopback itself.
    proc = run(["demo"], env={"BRIEFBOT_ALLOW_PRIVATE_URLS": "0", "OPENAI_API_KEY": ""}, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "EXTRACTIVE brief" in out
    # The demo polls its feeds in file order, so the first outlet listed leads a shared story every run.
    assert "EN  China clears rare-earth magnet export licences for 12 European firms" in out
    assert "EN  US and China extend tariff truce by 90 days, keep 10% baseline duty" in out
    assert "ZH  北方稀土上调第四季度挂牌价" in out  # GBK feed decoded
    assert "关键数字" in out and "Key figures" in out
    assert "151.20" not in out and "56美元" not in out  # ticker / related-article boilerplate never reaches a brief
    assert "Ofgem" not in out  # energy "tariff" excluded
    assert "Lithium miners" not in out  # irrelevant
    assert "Gallium exports resume" not in out  # older than max_age on first poll
    assert "5 new brief(s), 4 joined an existing story" in out  # same story across outlets and languages


def test_poll_once_then_brief_json_and_feeds(http_server, tmp_path):
    http_server.route("/feed.xml", Reply(200, rss([Entry(
        "Antimony prices hit record as exports stay curbed",
        "Antimony traded at $38,000 per tonne in Rotterdam, up 12% in a month.",
        guid="a1", link="https://wire.example/a1")]), content_type="application/rss+xml"))
    config = tmp_path / "feeds.yaml"
    config.write_text(f"""
topics:
  rare-earth:
    label: {{en: Rare earths, zh: 稀土}}
    keywords: [antimony, 锑]
feeds:
  - {{name: wire, url: "{http_server.url('/feed.xml')}"}}
routes:
  - {{name: out, to: ["jsonl:out/briefs.jsonl"]}}
""", encoding="utf-8")
    env = {"DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite", "BRIEFBOT_CONFIG": str(config)}
    poll = run(["poll", "--once"], env=env)
    assert poll.returncode == 0, poll.stderr
    assert len((tmp_path / "out" / "briefs.jsonl").read_text().splitlines()) == 1
    again = run(["poll", "--once"], env=env)  # nothing new on a second poll
    assert again.returncode == 0
    assert len((tmp_path / "out" / "briefs.jsonl").read_text().splitlines()) == 1
    brief = run(["brief", "rare-earth", "--json"], env=env)
    doc = json.loads(brief.stdout.splitlines()[0])
    assert doc["topics"] == ["rare-earth"] and doc["sources"][0]["feed"] == "wire"
    unknown = run(["brief", "rare-erth"], env=env)
    assert unknown.returncode == 2 and "rare-earth" in unknown.stderr
    feeds = run(["feeds"], env=env)
    assert "wire" in feeds.stdout and "unchanged" in feeds.stdout
    assert http_server.url("/feed.xml") not in feeds.stdout  # URLs may hold tokens: never shown
