"""feeds.yaml validation: every error names file, line and field; the CLI exits 2."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from bot.config import ConfigError, Env, format_duration, load_config, parse_duration
from bot.app.container import parse_target

GOOD = """\
languages: [en, zh]
topics:
  rare-earth:
    label: {en: Rare earths, zh: 稀土}
    keywords: ["rare earth", 稀土]
  tariff:
    label: {en: Tariffs, zh: 关税}
    keywords: [tariff, 关税]
feeds:
  - name: wire
    url: https://example.org/rss.xml
    every: 10m
    topics: [rare-earth]
routes:
  - name: alerts
    topics: [rare-earth, tariff]
    to: ["console", "jsonl:out/briefs.jsonl", "slack:C0123ABC", "discord:123456789012345678",
         "discord-webhook:https://discord.com/api/webhooks/123/abcDEF"]
digests:
  - {name: oncall, cron: "0 8 * * 1-5", timezone: Asia/Shanghai, topics: [tariff], to: ["slack:C0ONCALL"]}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "feeds.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def error_for(tmp_path: Path, text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text), parse_target)
    return info.value


def test_good_config_loads(tmp_path):
    s = load_config(write(tmp_path, GOOD), parse_target)
    assert s.feeds[0].every == timedelta(minutes=10)
    assert [str(t) for t in s.targets_for(["tariff"])][:2] == ["console", "jsonl:out/briefs.jsonl"]
    assert s.feed_topics(s.feeds[0]) == ["rare-earth"]
    assert s.digests[0].timezone == "Asia/Shanghai"


def test_shipped_feeds_yaml_is_valid():
    s = load_config(Path(__file__).parent.parent / "feeds.yaml", parse_target)
    assert {"rare-earth", "tariff"} <= set(s.topics)
    assert len(s.feeds) >= 4


@pytest.mark.parametrize("broken, line, field, words", [
    (GOOD.replace("    every: 10m", "    every: 10x"), 12, "feeds[0].every", "invalid duration"),
    (GOOD.replace("    topics: [rare-earth]\n", "    topics: [rare-earth, copper]\n"), 13, "feeds[0].topics[1]",
     "unknown topic 'copper'"),
    (GOOD.replace("    every: 10m", "    every: 10m\n    colour: red"), 13, "feeds[0].colour", "unknown key"),
    (GOOD.replace('"slack:C0123ABC"', '"slack:#alerts"'), 17, "routes[0].to[2]", "channel id"),
    (GOOD.replace('"console", ', '"telegram:123", '), 17, "routes[0].to[0]", "unknown target kind"),
    (GOOD.replace('cron: "0 8 * * 1-5"', 'cron: "0 8 * *"'), 20, "digests[0].cron", "5 fields"),
    (GOOD.replace("timezone: Asia/Shanghai", "timezone: Mars/Olympus"), 20, "digests[0].timezone",
     "unknown timezone"),
    (GOOD.replace("url: https://example.org/rss.xml", "url: ftp://example.org/rss.xml"), 11, "feeds[0].url",
     "http(s)"),
    (GOOD.replace("    every: 10m", "    every: 5s"), 12, "feeds[0].every", "out of range (allowed 30s to 30d)"),
])
def test_errors_name_line_and_field(tmp_path, broken, line, field, words):
    err = error_for(tmp_path, broken)
    assert err.line == line, str(err)
    assert err.field == field, str(err)
    assert words in err.message, str(err)
    assert str(err).startswith(f"{tmp_path / 'feeds.yaml'}:{line}: {field}: ")


def test_yaml_syntax_error_has_line(tmp_path):
    broken = GOOD.replace("  tariff:\n", "  tariff:\n   - oops: [\n")
    opened = broken.splitlines().index("   - oops: [") + 1
    err = error_for(tmp_path, broken)
    # The parser notices the unclosed list a line or two after it opens, and says where.
    assert opened <= err.line <= opened + 2, str(err)
    assert "YAML syntax error" in err.message
    assert str(err).startswith(f"{tmp_path / 'feeds.yaml'}:{err.line}: ")


def test_missing_label_language(tmp_path):
    err = error_for(tmp_path, GOOD.replace("label: {en: Tariffs, zh: 关税}", "label: {en: Tariffs}"))
    assert err.field == "topics.tariff.label" and "zh" in err.message


def test_durations_and_targets():
    assert parse_duration("90s") == timedelta(seconds=90)
    assert parse_duration("2h") == timedelta(hours=2)
    assert parse_duration(45) == timedelta(seconds=45)
    assert [format_duration(parse_duration(v)) for v in ("90s", "10m", "24h", "2d")] == ["90s", "10m", "1d", "2d"]
    with pytest.raises(ValueError):
        parse_duration("-5m")
    hook = parse_target("discord-webhook:https://discord.com/api/webhooks/123/SECRETTOKEN")
    assert "SECRETTOKEN" not in hook.redacted and "123" in hook.redacted


def test_env_defaults_and_flags():
    env = Env.from_environ({"BRIEFBOT_ALLOW_PRIVATE_URLS": "1", "DISCORD_GUILD_IDS": "1, 2", "PORT": "8000"})
    assert env.database_url.startswith("sqlite:///")
    assert env.allow_private_urls and env.get("DISCORD_GUILD_IDS") == "1, 2" and env.port == 8000
    assert not env.llm_enabled
    assert Env.from_environ({"OPENAI_BASE_URL": "http://127.0.0.1:1/v1"}).llm_enabled


def test_cli_check_exits_2_with_location(tmp_path):
    path = write(tmp_path, GOOD.replace("    every: 10m", "    every: soon"))
    proc = subprocess.run([sys.executable, "-m", "bot", "--config", str(path), "check"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2
    assert f"{path}:12: feeds[0].every: invalid duration 'soon'" in proc.stderr
    ok = subprocess.run([sys.executable, "-m", "bot", "--config", str(write(tmp_path, GOOD)), "check"],
                        capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and "OK" in ok.stdout
