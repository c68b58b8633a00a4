"""Generated YAML documents thrown at the config loader: anchors and aliases, deep nesting, huge
values and numbers, wrong types, duplicate keys, tags, random text. The loader must answer each with
Settings or one ConfigError line, never a traceback, and never grow: the examples run in a child
process limited to 200 MB of address space, so an expansion fails the test instead of the machine."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

MEMORY_LIMIT = 200 * 1024 * 1024
EXAMPLES = 400

GOOD = """\
languages: [en, zh]
topics:
  tariff:
    label: {en: Tariffs, zh: 关税}
    keywords: [tariff, 关税]
feeds:
  - {name: wire, url: "https://example.org/rss.xml", every: 10m}
routes:
  - {name: all, to: ["console", "jsonl:out/briefs.jsonl"]}
digests:
  - {name: oncall, cron: "0 8 * * 1-5", to: [console]}
"""

# Places a hostile value can go, as (text to replace in GOOD, template with {v}).
SLOTS = [("every: 10m", "every: {v}"), ("keywords: [tariff, 关税]", "keywords: {v}"),
         ('to: ["console", "jsonl:out/briefs.jsonl"]', "to: {v}"), ('"0 8 * * 1-5"', "{v}"),
         ('url: "https://example.org/rss.xml"', "url: {v}"), ("languages: [en, zh]", "languages: {v}"),
         ("label: {en: Tariffs, zh: 关税}", "label: {v}"), ("name: wire", "name: {v}")]

scalars = st.one_of(
    st.sampled_from([".inf", "-.inf", ".nan", "~", "null", "true", "no", "0", "-1", "1e999", "0x7fffffffffffffff",
                     "99999999999999d", "9999999999d", "10x", "٣٠m", "2026-13-45", "12:30:45", "'0 8 30 2 *'",
                     "'٠ ٨ * * *'", "http://example.org:99999/", "http://example.org:abc/", "'http://exa mple.org/'",
                     "'http://[::zz]/'", "'telegram:1'", "'discord-webhook:http://127.0.0.1/api/webhooks/1/x'",
                     "!!binary aGVsbG8=", "!!python/object:os.system {}", "!!set {a, b}", "<<: {a: 1}", "''"]),
    st.integers(min_value=1, max_value=6000).map(lambda n: "9" * n),
    st.integers(min_value=1, max_value=20_000).map(lambda n: '"' + "x" * n + '"'),
    st.from_regex(r"\A[0-9]{1,20}(\.[0-9]{1,5})?(s|m|h|d|w|days)?\Z"),
    st.text(max_size=40).map(lambda t: '"' + t.replace("\\", "\\\\").replace('"', '\\"') + '"'),
)


def nested(depth: int, bracket: str) -> str:
    opening, closing = {"[": ("[", "]"), "{": ("{a: ", "}")}[bracket]
    return opening * depth + "1" + closing * depth


def alias_bomb(levels: int, copies: int) -> str:
    lines = [f"b0: &b0 [" + ", ".join(["lol"] * copies) + "]"]
    lines += [f"b{n}: &b{n} [" + ", ".join([f"*b{n - 1}"] * copies) + "]" for n in range(1, levels)]
    return "\n".join(lines) + "\n"


values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4).map(lambda xs: "[" + ", ".join(xs) + "]"),
    st.lists(st.tuples(st.sampled_from(["a", "b", "name", "to", "a"]), inner), max_size=4).map(
        lambda kvs: "{" + ", ".join(f"{k}: {v}" for k, v in kvs) + "}"),
), max_leaves=8) | st.builds(nested, st.integers(1, 600), st.sampled_from("[{"))


@st.composite
def documents(draw) -> str:
    text = GOOD
    for _ in range(draw(st.integers(1, 3))):
        old, template = draw(st.sampled_from(SLOTS))
        text = text.replace(old, template.format(v=draw(values)), 1)
    if draw(st.booleans()):
        levels, copies = draw(st.integers(2, 9)), draw(st.integers(2, 10))
        text = alias_bomb(levels, copies) + text.replace("every: 10m", f"every: *b{levels - 1}")
    if draw(st.booleans()):  # a key given twice, at the top or inside a mapping
        text += draw(st.sampled_from(["feeds: []\n", "topics: {}\n", "languages: [en]\n", "routes:\n  - {name: all, "
                                      "name: all, to: [console]}\n", "digests:\n  - {name: d, cron: '* * * * *', "
                                      "to: [console]}\n  - {name: d, cron: '* * * * *', to: [console]}\n"]))
    return text


def fuzz_the_loader() -> None:
    """Runs in the memory-limited child: every generated document loads or raises one ConfigError line."""
    from bot.app.container import parse_target
    from bot.config import ConfigError, Settings, load_config

    path = Path(tempfile.mkdtemp()) / "feeds.yaml"

    # Generation only: the explain phase traces every line run, which costs more memory than the
    # loader is allowed, and a fixed seed makes shrinking unnecessary to reproduce a failure.
    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(st.one_of(documents(), st.text(max_size=300), st.binary(max_size=300)))
    def one_document(doc) -> None:
        path.write_bytes(doc if isinstance(doc, bytes) else doc.encode("utf-8", "surrogatepass"))
        try:
            loaded = load_config(path, parse_target)
        except ConfigError as exc:
            line = str(exc)
            assert line.startswith(str(path)) and "\n" not in line and len(line) < 700, line
        else:
            assert isinstance(loaded, Settings)

    one_document()
    peak = next(line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith("VmPeak"))
    print("fuzzed", EXAMPLES, peak)


# Hypothesis sets itself up on its first draw in a fresh checkout (tables it builds and caches, which
# under the limit can stall): one example is drawn before the limit, which is for the loader.
CHILD = f"""
import resource, sys, warnings
warnings.simplefilter("ignore")
from faults.test_config_fuzz import documents, fuzz_the_loader
documents().example()
resource.setrlimit(resource.RLIMIT_AS, ({MEMORY_LIMIT}, {MEMORY_LIMIT}))
fuzz_the_loader()
"""


@pytest.mark.fault("config: generated hostile YAML under a 200 MB memory limit")
def test_generated_documents_load_or_give_one_config_error_line():
    tests_dir = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tests_dir), str(tests_dir.parent)])}
    # A session of its own: signals other tests' processes send to their process group never reach it.
    done = subprocess.run([sys.executable, "-c", CHILD], env=env, stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=100, start_new_session=True)
    assert done.returncode == 0, done.stderr[-5000:]
    assert f"fuzzed {EXAMPLES}" in done.stdout
