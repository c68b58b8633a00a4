"""The real-model bench (bench/real_model.py) on the loopback fake: its run through the poll
pipeline, the rejection kinds it reads from the summariser's log lines, its report; and its one
line and exit 2 when llama-cpp-python or the model is missing. The real model is run by hand."""

from __future__ import annotations

import subprocess
import sys
import venv
from argparse import Namespace
from datetime import datetime, timezone

from bench import real_model
from bench.common import REPO, make_env
from bench.corpus import render_feed
from bench.servers import FeedServer, write_manifest
from fakes.openai_server import FakeOpenAI, chat_json

# What a small model does: a month the articles never give, and the planted figure as a key figure.
SLOPPY_REPLY = {
    "relevant": True,
    "title": {"en": "Trade and metals update", "zh": "贸易与金属动态"},
    "summary": {"en": "Officials announced new measures. They took effect on June 9.",
                "zh": "有关部门公布了新措施。"},
    "figures": [{"text": "900 tonnes", "label": {"en": "output", "zh": "产量"}}],
}


async def test_bench_run_counts_what_the_guard_rejected(tmp_path):
    write_manifest(tmp_path / "feeds", {f.path: ("application/rss+xml; charset=utf-8", [(0.0, render_feed(f))])
                                        for f in real_model.own_feeds(datetime.now(timezone.utc))})
    args = Namespace(sets={"own"}, timeout=10.0, max_retries=0)
    with FakeOpenAI() as fake, FeedServer(tmp_path / "feeds", hosts=1) as own:
        fake.default = chat_json(SLOPPY_REPLY)
        settings = real_model.bench_settings("http://127.0.0.1:9", own, args)
        env = make_env(f"sqlite:///{tmp_path / 'bench.db'}", openai_base_url=fake.base_url,
                       openai_api_key="local", model="fake-local")
        runs, briefs, events, reports = await real_model.brief_everything(settings, env)

    result = real_model.results(runs, briefs, events)
    assert [r.error for r in reports] == [None, None]
    assert result["stories"] == len(real_model.ARTICLES) == result["by_model"]
    assert result["replies"] == 2 * result["stories"]  # each reply faulted once, then trimmed
    kinds = result["rejections"]
    assert kinds["grounding: date part not in the article"] == 2 * result["stories"]
    assert kinds["sentence removed after the retry"] == result["stories"]
    assert kinds["figure: not in the article"] == 2 * result["stories"]
    assert kinds["planted instruction removed"] == 2
    assert result["planted_leaked"] == 0 and result["planted_notes"] == [True, True]
    # The guard left the model no figure: recall of its own figures is nil, the parser's stand in.
    assert result["recall"]["model_own"][0] == 0 < result["recall"]["llm"][0]
    for row in result["rows"]:
        assert "June 9" not in row["brief"]["summary"]["en"]

    meta = {"model": "fake-local.gguf", "llama_version": "-", "ctx": 8192, "threads": 2, "timeout": 10.0,
            "max_retries": 0, "speed_check_s": 1.0, "load_before": "0.0", "load_after": "0.0", "when": "now",
            "load_s": 0.0, "first_request_s": 0.0, "run_s": 1.0}
    report = real_model.render(result, meta)
    assert f"Briefs written by the model: {len(real_model.ARTICLES)}/{len(real_model.ARTICLES)}" in report
    assert "grounding: date part not in the article 8" in report


def _bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bench.real_model", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=300, stdin=subprocess.DEVNULL)


def test_bench_without_model_or_llama_cpp_says_so_and_exits_2(tmp_path):
    no_model = _bench("--model", str(tmp_path / "missing.gguf"))
    assert no_model.returncode == 2
    assert no_model.stderr.strip().splitlines() == [f"bench.real_model: no GGUF model at {tmp_path / 'missing.gguf'}"]

    bare = tmp_path / "bare-venv"
    venv.create(bare, with_pip=False)
    model = tmp_path / "model.gguf"
    model.write_bytes(b"GGUF")
    no_server = _bench("--model", str(model), "--python", str(bare / "bin" / "python"))
    assert no_server.returncode == 2
    lines = no_server.stderr.strip().splitlines()
    assert len(lines) == 1 and "llama-cpp-python[server] is not installed" in lines[0]
