"""Shared bits of the benchmarks: results, machine description, percentiles, settings, fakes."""

from __future__ import annotations

import math
import os
import platform
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
TESTS = REPO / "tests"
# The loopback fakes (OpenAI, Slack) live with the tests; the bench reuses them rather than copies.
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

TOPICS = {
    "rare-earth": {"label": {"en": "Rare earths", "zh": "稀土"},
                   "keywords": ["rare earth", "rare earths", "稀土", "antimony", "锑", "gallium", "镓", "germanium",
                                "锗", "dysprosium", "镝", "terbium", "铽", "NdPr", "镨钕", "magnet", "磁材"]},
    "tariff": {"label": {"en": "Tariffs", "zh": "关税"},
               "keywords": ["tariff", "tariffs", "关税", "export controls", "出口管制", "trade war", "贸易战"],
               "exclude": ["energy tariff", "电价"]},
}


@dataclass
class Result:
    """One benchmark figure, as it goes into the BENCHMARKS.md table."""

    key: str  # P1 ... P6 (with a suffix for variants, e.g. P1b)
    name: str
    figure: str  # the headline measured value, human readable
    baseline: str  # the baseline measured in the same run
    ratio: str  # figure vs baseline, e.g. "23.4× faster"
    target: str
    passed: bool | None  # None: informational, no target
    details: list[str] = field(default_factory=list)  # absolute numbers and notes
    data: dict[str, Any] = field(default_factory=dict)  # raw numbers (JSON output)

    @property
    def verdict(self) -> str:
        return "—" if self.passed is None else ("PASS" if self.passed else "FAIL")


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100); what "p95 of 24 samples" means without interpolation."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def machine() -> dict[str, str]:
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = "unknown"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    import sqlalchemy

    return {"cpu": cpu, "cores": f"{os.cpu_count()} logical ({usable} usable)", "ram": ram,
            "python": platform.python_version(), "os": f"{platform.system()} {platform.release()}",
            "sqlite": __import__("sqlite3").sqlite_version, "sqlalchemy": sqlalchemy.__version__,
            "host": socket.gethostname(), "speed_check_s": speed_check()}


def speed_check() -> float:
    """CPU seconds of a fixed pure-Python loop (best of 3). A shared machine runs at different speeds
    at different times, and CPU-bound figures (P1's briefbot side) move with it: this says which
    phase a run was measured in."""
    best = float("inf")
    for _ in range(3):
        started, total = time.process_time(), 0
        for i in range(10_000_000):
            total += i
        best = min(best, time.process_time() - started)
    return round(best, 3)


# The benchmarks measure how fast every item is read, briefed and delivered, so the flood guard's caps
# (briefs per feed and poll, posts per target and hour) are lifted out of the way.
UNCAPPED = {"max_new_per_poll": 100_000, "max_posts_per_hour": 100_000}


def make_settings(feeds: list[dict], routes: list[dict] | None = None, source_dir: Path | None = None,
                  **extra):
    from bot.config import Settings

    # The fast-path probe also runs this against older trees, whose settings have no caps.
    uncapped = {k: v for k, v in UNCAPPED.items() if k in Settings.model_fields}
    data = {"languages": ["en", "zh"], "topics": TOPICS, "feeds": feeds, "routes": routes or [],
            **uncapped, **extra}
    settings = Settings.model_validate(data)
    if source_dir is not None:
        settings.source_path = source_dir / "feeds.yaml"
    return settings


def make_env(db_url: str, **overrides):
    from bot.config import Env

    env = Env.from_environ({"DATABASE_URL": db_url, "BRIEFBOT_ALLOW_PRIVATE_URLS": "1"})
    return env.replace(**overrides)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fmt_s(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"
