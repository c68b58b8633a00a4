"""One timing for bench/fastpaths.py, run in a process of its own so that `bot` can come from
another tree (the code as it was before a fast path was removed, extracted from git history).

    python bench/fastpath_probe.py SPEC.json      # prints one JSON line: {"seconds": ...}

SPEC: {"tree": DIR holding the `bot` to time, "kind": "call" | "stories", ...}.
  call:    {"target": "module:function", "args": PICKLE} — CPU seconds of calling the function on
           every recorded argument tuple, best of `repeat`.
  stories: {"feeds": [[name, url], ...], "work": DIR, "layout": "current" | "before"} — a cold
           poll of the feeds; CPU seconds spent in the story index (lookups and additions), and
           the whole poll's CPU (this process and its parser worker) as "poll_cpu".

Run as a script, not with -m: `bench` and `bot` must not come from the same tree.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import os
import pickle
import resource
import sys
import time
from pathlib import Path


def time_calls(target: str, args_file: str, repeat: int) -> float:
    module, name = target.split(":")
    fn = getattr(importlib.import_module(module), name)
    calls = pickle.loads(Path(args_file).read_bytes())
    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        for args in calls:
            fn(*args)
        best = min(best, time.process_time() - started)
    return best


# Where the app is built and where the story index lives, in each layout of the tree.
LAYOUTS = {
    "current": ("bot.app.container", "bot.analyse.stories"),
    "before": ("bot.pipeline", "bot.stories"),
}


def time_story_index(feeds: list[list[str]], work: str, layout: str) -> dict:
    from bench.common import make_settings
    from bot.config import Env

    app_module, stories_module = (importlib.import_module(m) for m in LAYOUTS[layout])
    index = stories_module.StoryIndex
    spent = [0.0]

    def timed(fn):
        def wrapper(*args, **kwargs):
            started = time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[0] += time.thread_time() - started
        return wrapper

    index.find_same_story, index.add = timed(index.find_same_story), timed(index.add)
    settings = make_settings([{"name": n, "url": u, "every": "10m"} for n, u in feeds], source_dir=Path(work))
    db = Path(work) / f"stories-{layout}-{os.getpid()}.db"
    env = Env.from_environ({"DATABASE_URL": f"sqlite:///{db}", "BRIEFBOT_ALLOW_PRIVATE_URLS": "1"})
    app = app_module.build_app(settings, env)
    poller = app_module.make_poller(app) if layout == "current" else app_module.Poller(app)

    async def poll() -> None:
        try:
            await poller.poll_all(force=True)
        finally:
            await app_module.close_app(app)

    cpu0 = time.process_time() + _children_cpu()
    asyncio.run(poll())  # closing the app reaps the parser worker: its CPU is then the children's
    return {"seconds": spent[0], "poll_cpu": time.process_time() + _children_cpu() - cpu0}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main(spec_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    sys.path[:0] = [spec["tree"], spec["bench_root"]]
    logging.getLogger("briefbot").setLevel(logging.ERROR)
    if spec["kind"] == "call":
        out = {"seconds": time_calls(spec["target"], spec["args"], int(spec.get("repeat", 2)))}
    else:
        out = time_story_index(spec["feeds"], spec["work"], spec["layout"])
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
