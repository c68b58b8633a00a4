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


# --------------------------------------------------------------------------- hostile documents

def alias_bomb(levels: int = 9, copies: int = 10) -> str:
    """Nine anchor levels of ten copies: under 600 bytes that expand to 10^9 strings if followed."""
    lines_ = ['a0: &a0 ["lol"' + ', "lol"' * (copies - 1) + "]"]
    for level in range(1, levels):
        lines_.append(f"a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * copies) + "]")
    return "\n".join(lines_) + "\n"


BOMB = alias_bomb()
DEEP = "[" * 500 + "]" * 500


@pytest.mark.parametrize("broken, line, field, words", [
    # Anchors and aliases: refused at the first one, before anything is expanded.
    (GOOD.replace("every: 10m", "every: &often 10m"), 12, "feeds[0].every", "YAML anchor &often is not allowed"),
    (BOMB + GOOD.replace("every: 10m", "every: *a8"), 1, "a0", "YAML anchor &a0 is not allowed"),
    (GOOD.replace('to: ["console", ', 'to: [*a8, "console", '), 17, "routes[0].to[0]", "YAML alias *a8 is not allowed"),
    (GOOD + "other: {<<: {a: 1}}\n", 21, "other", "merge keys (<<) are not allowed"),
    (GOOD + "other: !!python/object:os.system {}\n", 21, "other", "YAML tag"),
    (GOOD + "other: !!binary aGVsbG8=\n", 21, "other", "YAML tag"),
    (GOOD + "? [a, b]\n: c\n", 21, "", "a key must be plain text"),
    # Duplicate keys at any level: the second one is named.
    (GOOD + "feeds:\n  - {name: other, url: 'https://example.org/b.xml'}\n", 21, "feeds", "duplicate key 'feeds'"),
    (GOOD.replace("  tariff:\n", "  rare-earth:\n"), 6, "topics.rare-earth", "duplicate key 'rare-earth'"),
    (GOOD.replace("    every: 10m\n", "    every: 10m\n    every: 1h\n"), 13, "feeds[0].every", "duplicate key 'every'"),
    (GOOD.replace("label: {en: Tariffs, zh: 关税}", "label: {en: Tariffs, zh: 关税, en: Duties}"), 7,
     "topics.tariff.label.en", "duplicate key 'en'"),
    # Duplicate names in lists.
    (GOOD.replace("digests:", "  - {name: alerts, to: [console]}\ndigests:"), 19, "routes[1].name",
     "duplicate name 'alerts'"),
    (GOOD.replace("routes:", "  - {name: wire, url: 'https://example.org/b.xml'}\nroutes:"), 14, "feeds[1].name",
     "duplicate name 'wire'"),
    (GOOD + '  - {name: oncall, cron: "0 9 * * *", to: [console]}\n', 21, "digests[1].name", "duplicate name 'oncall'"),
    # Nesting, sizes, numbers.
    (GOOD.replace("keywords: [tariff, 关税]", f"keywords: {DEEP}"), 8, "topics.tariff.keywords" + "[0]" * 13,
     "nested more than 16 levels deep"),
    ("topics: " + DEEP + "\n", 1, "topics" + "[0]" * 15, "nested more than 16 levels deep"),
    (GOOD.replace("url: https://example.org/rss.xml", "url: https://example.org/" + "x" * 9000), 11, "feeds[0].url",
     "value is 9,020 characters long (at most 8,192)"),
    (GOOD.replace("    every: 10m", "    every: " + "9" * 5000), 12, "feeds[0].every", "number is 5000 digits long"),
    # Durations out of range: the allowed range, never an OverflowError.
    (GOOD.replace("    every: 10m", "    every: .inf"), 12, "feeds[0].every",
     "duration inf is out of range (allowed 30s to 30d)"),
    (GOOD.replace("    every: 10m", "    every: 99999999999999d"), 12, "feeds[0].every",
     "duration '99999999999999d' is out of range (allowed 30s to 30d)"),
    (GOOD.replace("languages: [en, zh]", "languages: [en, zh]\nmax_age: 9999999999d"), 2, "max_age",
     "duration '9999999999d' is out of range (allowed 1s to 365d)"),
    (GOOD.replace("    every: 10m", "    every: .nan"), 12, "feeds[0].every", "duration nan must be positive"),
    (GOOD.replace("    every: 10m", "    every: -5m"), 12, "feeds[0].every", "invalid duration '-5m'"),
    (GOOD.replace("    every: 10m", "    every: ٣٠m"), 12, "feeds[0].every", "invalid duration '٣٠m'"),
    (GOOD + "llm: {timeout: 2d}\n", 21, "llm.timeout", "out of range (allowed 0.1s to 1h)"),
    (GOOD.replace("timezone: Asia/Shanghai", "timezone: Asia/Shanghai, window: 400d"), 20, "digests[0].window",
     "out of range (allowed 1s to 31d)"),
    (GOOD.replace("    weight: 1", "") + "fetch: {concurrency: 99999999999}\n", 21, "fetch.concurrency",
     "less than or equal to 4096"),
    (GOOD.replace("    keywords: [tariff, 关税]", "    keywords: [tariff, 关税]\n    weight: .inf"), 9,
     "topics.tariff.weight", "finite number"),
    # Wrong types: named by type, never formatted in full.
    (GOOD.replace("    every: 10m", "    every: [10m, 20m]"), 12, "feeds[0].every",
     "expected a duration (use e.g. 30s, 10m, 2h, 1d), got a list"),
    (GOOD.replace("    every: 10m", "    every: {a: 1}"), 12, "feeds[0].every", "got a mapping"),
    (GOOD.replace('to: ["console", ', 'to: [[console], '), 17, "routes[0].to[0]",
     "a target must be text like 'console' or 'KIND:ADDRESS', not a list"),
    (GOOD.replace("languages: [en, zh]", "languages: [en, zh]\ntimezone: 2026-13-45"), 2, "timezone",
     "unknown timezone '2026-13-45'"),
    # Feed URLs that can never work: the feed and the reason.
    (GOOD.replace("https://example.org/rss.xml", "http://example.org:99999/rss.xml"), 11, "feeds[0].url",
     "feed 'wire': port 99999 is out of range (1-65535)"),
    (GOOD.replace("https://example.org/rss.xml", "http://example.org:abc/rss.xml"), 11, "feeds[0].url",
     "feed 'wire': port 'abc' is not a number"),
    (GOOD.replace("https://example.org/rss.xml", '"http://example .org/rss.xml"'), 11, "feeds[0].url",
     "feed 'wire': host 'example .org' contains a space"),
    (GOOD.replace("https://example.org/rss.xml", '"http://[::zz]/rss.xml"'), 11, "feeds[0].url",
     "feed 'wire': not a valid URL: '::zz' does not appear to be an IPv4 or IPv6 address"),
    (GOOD.replace("https://example.org/rss.xml", "http://exa_mple..org/rss.xml"), 11, "feeds[0].url",
     "feed 'wire': host 'exa_mple..org' is not a valid host name"),
    (GOOD.replace("https://example.org/rss.xml", "https:///rss.xml"), 11, "feeds[0].url", "feed 'wire': URL has no host"),
    # Crons that can never fire, or are not written in ASCII.
    (GOOD.replace('cron: "0 8 * * 1-5"', 'cron: "0 8 30 2 *"'), 20, "digests[0].cron",
     "cron '0 8 30 2 *' never fires: none of its months has that day"),
    (GOOD.replace('cron: "0 8 * * 1-5"', 'cron: "0 ٨ * * 1-5"'), 20, "digests[0].cron",
     "must be written in ASCII (digits 0-9"),
])
def test_hostile_documents_get_one_located_line(tmp_path, broken, line, field, words):
    err = error_for(tmp_path, broken)
    assert (err.line, err.field) == (line, field), str(err)
    assert words in err.message, str(err)
    where = f"{tmp_path / 'feeds.yaml'}:{line}: "
    assert str(err) == where + (f"{field}: " if field else "") + err.message
    assert "\n" not in str(err) and len(str(err)) < len(where) + 500


def test_error_lines_quote_a_short_repr_of_huge_values(tmp_path):
    # A long unknown target (the adapter registry quotes it) and a long timezone are cut short.
    err = error_for(tmp_path, GOOD.replace('"console", ', '"telegram:' + "x" * 2000 + '", '))
    assert "unknown target kind" in err.message and len(err.message) <= 301 and err.message.endswith("…")
    err = error_for(tmp_path, GOOD.replace("languages: [en, zh]", "languages: [en, zh]\ntimezone: " + "Z" * 5000))
    assert err.field == "timezone" and "at most 64 characters" in err.message


def test_file_size_and_encoding_are_checked_before_parsing(tmp_path):
    path = tmp_path / "feeds.yaml"
    path.write_bytes(GOOD.encode() + b"# " + b"x" * (600 * 1024) + b"\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, parse_target)
    assert str(info.value) == f"{path}: config file is larger than 512 KiB; is this the right file?"
    path.write_bytes(GOOD.encode() + b"extra: \xff\xfe\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, parse_target)
    assert str(info.value) == f"{path}:21: not UTF-8 text (save the file as UTF-8)"


def test_too_many_values_are_refused(tmp_path):
    err = error_for(tmp_path, GOOD + "other: [" + "1, " * 40_000 + "1]\n")
    assert err.line == 21 and err.field.startswith("other[") and "too many values (more than 30,000)" in err.message


def test_duration_ranges():
    assert parse_duration("1d") == timedelta(days=1)
    assert parse_duration(timedelta(seconds=2)) == timedelta(seconds=2)
    assert parse_duration("0.5s", shortest=timedelta(milliseconds=100)) == timedelta(milliseconds=500)
    for value, words in [(float("inf"), "duration inf is out of range (allowed 1s to 365d)"),
                         (10**400, "out of range"), ("9" * 15 + "w", "out of range"), (True, "got true/false"),
                         (None, "got nothing (null)"), ("1" * 100, "invalid duration '111"), (0, "must be positive"),
                         (timedelta(days=400), "duration 400d is out of range")]:
        with pytest.raises(ValueError) as info:
            parse_duration(value)
        assert words in str(info.value) and len(str(info.value)) < 200, (value, str(info.value))


@pytest.mark.parametrize("value", ["abc", "inf", "nan", "0", "1e9"])
def test_env_lease_seconds_is_a_bounded_number(value):
    with pytest.raises(ConfigError) as info:
        Env.from_environ({"BRIEFBOT_LEASE_SECONDS": value})
    assert str(info.value) == f"environment: BRIEFBOT_LEASE_SECONDS: expected seconds from 1 to 86400, got {value!r}"
    assert Env.from_environ({"BRIEFBOT_LEASE_SECONDS": "8"}).lease_seconds == 8.0


def test_alias_as_a_key_is_refused_as_an_alias(tmp_path):
    err = error_for(tmp_path, "a: &k x\n" + GOOD)
    assert (err.line, err.field, err.message) == (1, "a", "YAML anchor &k is not allowed: write the value out in full")
    err = error_for(tmp_path, GOOD + "other: {*k : 1}\n")
    assert (err.line, err.field, err.message) == (21, "other", "YAML alias *k is not allowed: write the value out in full")
