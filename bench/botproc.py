"""`briefbot run` as a real subprocess, with its memory and CPU watched through /proc — summed over
the process tree, so the feed-parser worker process counts too."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import yaml

from bench.common import REPO, TOPICS, UNCAPPED, free_port


def write_config(path: Path, feeds: list[dict], routes: list[dict], **extra) -> Path:
    data = {"languages": ["en", "zh"], "topics": TOPICS, "feeds": feeds, "routes": routes, **UNCAPPED, **extra}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS / VmHWM (peak RSS) etc. of a process, in kB."""
    out = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(("VmRSS:", "VmHWM:", "VmSize:", "VmPeak:")):
                key, value = line.split(":", 1)
                out[key] = int(value.split()[0])
    except OSError:
        pass
    try:
        # Pss: each page divided by the processes sharing it, so summing over the bot's processes
        # does not count the interpreter and libraries they share twice (summed VmRSS does).
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                out["Pss"] = int(line.split()[1])
    except OSError:
        pass
    return out


def descendants(pid: int) -> list[int]:
    """Child processes of `pid`, recursively (the bot's feed-parser worker and its helpers)."""
    out: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return out
    for task in tasks:
        try:
            children = [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
        for child in children:
            out.append(child)
            out.extend(descendants(child))
    return out


def tree_status(pid: int) -> dict[str, int]:
    """proc_status summed over the process and its descendants: the memory the bot really holds.
    VmHWM summed is an upper bound of the tree's peak (each process's peak, whenever it was)."""
    members = [pid, *descendants(pid)]
    total: dict[str, int] = {}
    for member in members:
        for key, value in proc_status(member).items():
            total[key] = total.get(key, 0) + value
    total["processes"] = len(members)
    return total


def process_cpu_seconds(pid: int, include_reaped_children: bool = True) -> float:
    """utime + stime of a live process (+ its waited-for children's), in seconds."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])
    if include_reaped_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / os.sysconf("SC_CLK_TCK")


def bare_import_rss() -> dict[str, int]:
    """Baseline: peak RSS of `python -c "import bot.cli"`, read by that process at its end."""
    code = ("import bot.cli, pathlib;"
            "print([l for l in pathlib.Path('/proc/self/status').read_text().splitlines() if l.startswith('VmHWM')][0])")
    line = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          cwd=str(REPO)).stdout.strip()
    return {"VmHWM": int(line.split(":", 1)[1].split()[0])}


class BotProcess:
    """`python -m bot --config X run` with the given environment; samples RSS while it runs."""

    def __init__(self, config: Path, env: dict[str, str], log_path: Path):
        self.config, self.extra_env, self.log_path = config, env, log_path
        self.proc: subprocess.Popen | None = None
        # (seconds since start, Pss kB summed over the process tree, VmRSS kB of the bot process itself)
        self.samples: list[tuple[float, int, int]] = []
        self.started = 0.0
        self._stop_sampling = threading.Event()
        self._sampler: threading.Thread | None = None
        self.final_status: dict[str, int] = {}

    def start(self) -> "BotProcess":
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("OPENAI_", "SLACK_", "DISCORD_", "BRIEFBOT_", "DATABASE_URL"))}
        env.update({"BRIEFBOT_ALLOW_PRIVATE_URLS": "1", "METRICS_PORT": str(free_port()),
                    "BRIEFBOT_LOG_LEVEL": "WARNING", "PYTHONUNBUFFERED": "1"})
        env.update(self.extra_env)
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen([sys.executable, "-m", "bot", "--config", str(self.config), "run"],
                                     stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=str(self.config.parent))
        self.started = time.monotonic()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()
        return self

    def _sample(self) -> None:
        while not self._stop_sampling.wait(0.25):
            if not proc_status(self.proc.pid):
                return
            own = proc_status(self.proc.pid)
            status = tree_status(self.proc.pid)
            self.samples.append((time.monotonic() - self.started, status.get("Pss", 0), own.get("VmRSS", 0)))
            self.final_status = status

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM (graceful shutdown), after reading the peak RSS while the process still exists."""
        if self.proc is None:
            return -1
        own = proc_status(self.proc.pid)
        if own:
            self.final_status = {**tree_status(self.proc.pid), "own_VmHWM": own.get("VmHWM", 0)}
        self._stop_sampling.set()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()
        return self.proc.returncode

    def cpu_seconds(self) -> float:
        """CPU of the bot and its worker processes (live and finished)."""
        return sum(process_cpu_seconds(pid) for pid in [self.proc.pid, *descendants(self.proc.pid)])

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""
