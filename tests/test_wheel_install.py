"""briefbot as users install it: the built wheel, in a fresh virtualenv, writes an LLM brief.

The wheel is built offline from a copy of the source (so no build/ is left in the checkout) and
installed without its dependencies; those come from the environment running this test through a
plain path line in a .pth file, which adds their directory without running its .pth files (the
checkout's editable install among them), so `bot` can only be imported from the wheel."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from fakes.openai_server import FakeOpenAI, chat_json
from feedgen import rss
from loopback import Reply
from magnet_story import MAGNETS_EN, MAGNETS_REPLY

from bot.summarise.prompts import parse_prompt

ROOT = Path(__file__).resolve().parents[1]
# What the build reads: pyproject.toml names README.md; setup.py copies prompts/ into the package.
SOURCES = ("bot", "prompts", "pyproject.toml", "setup.py", "MANIFEST.in", "README.md")


def _run(cmd: list, **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=300, **kw)
    assert proc.returncode == 0, f"{cmd}: {proc.stdout}\n{proc.stderr}"
    return proc


def build_wheel(workdir: Path) -> Path:
    src = workdir / "src"
    src.mkdir()
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(path, src / name)
    _run([sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "--no-build-isolation", "--no-index",
          "-q", "-w", workdir / "dist"], cwd=src)
    (wheel,) = (workdir / "dist").glob("briefbot-*.whl")
    return wheel


def make_venv(workdir: Path, wheel: Path) -> Path:
    venv = workdir / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv])
    python = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps", "--no-index", wheel])
    site = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    deps = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site / "zz_test_dependencies.pth").write_text("\n".join(sorted(deps)) + "\n", encoding="utf-8")
    return venv


def test_installed_wheel_writes_an_llm_brief(tmp_path, http_server):
    wheel = build_wheel(tmp_path)
    venv = make_venv(tmp_path, wheel)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "BRIEFBOT_CONFIG")}
    where = _run([venv / "bin" / "python", "-c", "import bot; print(bot.__file__)"], cwd=tmp_path, env=env)
    assert where.stdout.strip().startswith(str(venv)), where.stdout
    version = _run([venv / "bin" / "briefbot", "--version"], cwd=tmp_path, env=env)
    assert version.stdout.strip() == "briefbot 0.1.0"

    http_server.route("/feed.xml", Reply(200, rss([MAGNETS_EN]), content_type="application/rss+xml"))
    run_dir = tmp_path / "run"  # no prompts/ here: the default prompts_dir falls back to the wheel's
    run_dir.mkdir()
    (run_dir / "feeds.yaml").write_text(f"""
topics:
  rare-earth:
    label: {{en: Rare earths, zh: 稀土}}
    keywords: [rare earth, 稀土]
feeds:
  - {{name: wire, url: "{http_server.url('/feed.xml')}"}}
routes:
  - {{name: out, to: ["jsonl:out/briefs.jsonl"]}}
""", encoding="utf-8")
    with FakeOpenAI() as fake:
        fake.queue(chat_json(MAGNETS_REPLY), chat_json(MAGNETS_REPLY))
        env.update(DATABASE_URL=f"sqlite:///{run_dir}/db.sqlite", OPENAI_BASE_URL=fake.base_url,
                   OPENAI_API_KEY="sk-test-wheel", BRIEFBOT_MODEL="fake-mini", BRIEFBOT_ALLOW_PRIVATE_URLS="1")
        proc = _run([venv / "bin" / "briefbot", "poll", "--once"], cwd=run_dir, env=env)
        assert fake.calls >= 1
        system = FakeOpenAI.message_text(fake.bodies[0], "system")
    assert "PromptError" not in proc.stderr and "not found" not in proc.stderr
    # The wheel's copy of prompts/brief.md is what was sent.
    shipped = parse_prompt((ROOT / "prompts" / "brief.md").read_text(encoding="utf-8"), ROOT / "brief.md")
    assert system.startswith(shipped.system.split("{")[0])
    (brief,) = [json.loads(line) for line in (run_dir / "out" / "briefs.jsonl").read_text().splitlines()]
    assert brief["mode"] == "llm" and brief["title"]["zh"] == MAGNETS_REPLY["title"]["zh"]
