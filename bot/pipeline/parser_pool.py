"""Feed parsing on another core, in worker processes the event loop talks to over pipes.

A poll of many feeds is CPU-bound in one event loop; parsing (XML, HTML to text, the entries'
facts) is a pure function of the body, so it runs in a worker process while the loop goes on
fetching, matching stories and writing. A thread would not help: parsing holds the GIL.

Why not concurrent.futures.ProcessPoolExecutor: when one of its workers dies (a parser crash on a
hostile document, the OOM killer), the executor is broken and every queued job fails with it. Here
a dying worker fails only the document it was reading: a worker reads its jobs in order, so that is
the oldest of its jobs in flight; the ones behind it were never started and go to a fresh worker.
(Measured, the executor costs the loop about the same CPU per document: the choice is for the
fault guarantee, not for speed.)

The protocol: a frame is a 4-byte big-endian length and a pickle; `(job_id, args)` goes to the
worker's stdin, `(job_id, AnalysedFeed | str)` comes back on its stdout, one per job, in order.
The loop watches the pipes itself (add_reader / add_writer, non-blocking), so a 10 MB body never
blocks it and the bot process gets no helper thread. Each worker has up to PIPELINE_DEPTH jobs in
flight, so it goes from one document straight to the next while the loop is busy.

Workers are started with subprocess, not fork: the bot holds database connections, sockets and
scheduler threads that a child must not inherit. Workers that die before finishing anything,
several in a row, mean no worker can run here (the code on disk was replaced under a running
bot): parsing goes inline. The pipes belong to one event loop: a parser used from a new loop
(asyncio.run again) retires the old loop's workers and starts fresh ones.
"""

from __future__ import annotations

import asyncio
import collections
import fcntl
import itertools
import json
import logging
import os
import pickle
import subprocess
import sys
import time
from dataclasses import dataclass

from bot.ingest.parse import FeedParseError
from bot.pipeline.facts import AnalysedFeed
from bot.pipeline.parser_worker import parse_for_poll

log = logging.getLogger("briefbot.parse")

__all__ = ["FeedParser", "default_parse_workers"]

DIED = "the parser process died while reading this document"
CLOSED = "the feed parser was closed while reading this document"

_PATH_ENV = "BRIEFBOT_PARSE_WORKER_SYS_PATH"
# Runs as `python -c` in the worker. The job and result pipes are the original stdin and stdout; fds 0
# and 1 are pointed elsewhere first (/dev/null, stderr), so nothing else in the worker (a stray
# print, a C library) can read a job or write into a result.
_BOOTSTRAP = f"""\
import json, os, sys
jobs_fd, results_fd = os.dup(0), os.dup(1)
null = os.open(os.devnull, os.O_RDONLY)
os.dup2(null, 0)
os.close(null)
os.dup2(2, 1)
sys.stdout = sys.stderr
sys.path[:] = json.loads(os.environ.pop({_PATH_ENV!r}))
from bot.pipeline.parser_worker import worker_main, worker_setup
worker_setup(int(sys.argv[1]))
worker_main(jobs_fd, results_fd)
"""
_PIPE_SIZE = 1 << 20  # fewer wake-ups for big bodies; best effort (Linux, within the user's pipe quota)
_HEADER = 4


def default_parse_workers() -> int:
    """One worker when this process may use a second core, else parse inline."""
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count() or 1
    return 1 if usable >= 2 else 0


class _Inline(Exception):
    """Raised to a job waiting for a worker when parsing has fallen back to the main process."""


@dataclass
class _Job:
    args: tuple  # kept until answered: a job its worker never started is sent again
    url: str
    future: asyncio.Future


class _Worker:
    def __init__(self, proc: subprocess.Popen):
        self.proc = proc
        self.pid = proc.pid
        self.loop: asyncio.AbstractEventLoop | None = None  # the loop watching its pipes
        self.in_flight: dict[int, _Job] = {}  # by job id, oldest first
        self.unsent: collections.deque[memoryview] = collections.deque()  # waiting for room in its stdin
        self.received = bytearray()  # its stdout, up to the last whole frame
        self.accepting = True  # False once it is known to be dying
        self.served = False  # has it answered a job?


class FeedParser:
    """`await parse(body, content_type, url, matcher)`: parse_feed and the entries' facts for a poll
    (bot.pipeline.parser_worker.parse_for_poll), inline (workers=0) or in worker processes."""

    # Workers in a row that died before answering any job: no document does that; a worker that
    # cannot start does (the code on disk replaced under a running bot, a broken install).
    BARREN_WORKERS_BEFORE_INLINE = 3
    PIPELINE_DEPTH = 8
    # close(): how long workers get to exit after their job pipe closes, before they are killed.
    EXIT_GRACE = 2.0

    def __init__(self, workers: int):
        self.workers = max(0, workers)
        self._workers: list[_Worker] = []
        self._exiting: list[_Worker] = []  # retired, not yet reaped
        self._backlog: collections.deque[_Job] = collections.deque()  # waiting for a free worker, FIFO
        self._loop: asyncio.AbstractEventLoop | None = None
        self._job_ids = itertools.count(1)
        self._barren_workers = 0

    def start(self) -> None:
        """Start the workers now, so their imports overlap the bot's start-up, not its first poll."""
        self._top_up()

    async def parse(self, body: bytes, content_type: str | None, url: str, matcher=None) -> AnalysedFeed:
        """The parsed feed and, given a TopicMatcher, its entries' facts (bot.pipeline.facts)."""
        args = (body, content_type, url, matcher)
        outcome: AnalysedFeed | str | None = None
        if self.workers:
            loop = asyncio.get_running_loop()
            if loop is not self._loop:
                self._adopt(loop)
            job = _Job(args, url, loop.create_future())
            self._backlog.append(job)
            self._dispatch()
            try:
                outcome = await job.future
            except _Inline:
                pass
        if outcome is None:
            outcome = parse_for_poll(*args)
        if isinstance(outcome, str):
            raise FeedParseError(url, outcome)
        return outcome

    def worker_pids(self) -> list[int]:
        """The live worker processes (for CPU and memory accounting)."""
        return [w.pid for w in self._workers if w.proc.returncode is None]

    def close(self) -> None:
        """Fail the jobs in hand, stop the workers (they exit when their job pipe closes) and reap
        them. Synchronous: the loop may be running, stopped or closed. A later parse starts afresh."""
        self._drop_jobs(lambda w: True)
        self._loop = None
        deadline = time.monotonic() + self.EXIT_GRACE
        for worker in self._exiting:
            try:
                worker.proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                worker.proc.kill()
                worker.proc.wait()
        self._exiting.clear()

    # ------------------------------------------------------------------ jobs

    def _dispatch(self) -> None:
        """Send waiting jobs, oldest first, to the least busy workers with room."""
        while self._backlog:
            if self._backlog[0].future.done():  # its poll was cancelled
                self._backlog.popleft()
                continue
            worker = self._free_worker()
            if worker is None or not self._backlog:  # (gone inline meanwhile)
                return
            job = self._backlog.popleft()
            job_id = next(self._job_ids)
            try:
                frame = pickle.dumps((job_id, job.args), pickle.HIGHEST_PROTOCOL)
            except Exception as exc:
                job.future.set_exception(exc)
                continue
            worker.in_flight[job_id] = job
            self._write(worker, len(frame).to_bytes(_HEADER, "big"))
            self._write(worker, frame)

    def _free_worker(self) -> _Worker | None:
        for worker in list(self._workers):
            if worker.accepting and worker.proc.poll() is not None:
                worker.accepting = False
                if not worker.in_flight:
                    self._worker_ended(worker)  # died between feeds: nothing lost
                # else its stdout's EOF fails its jobs, once the results it wrote are read
        self._exiting = [w for w in self._exiting if w.proc.poll() is None]  # reap: no zombies
        self._top_up()
        ready = [w for w in self._workers if w.accepting and len(w.in_flight) < self.PIPELINE_DEPTH]
        return min(ready, key=lambda w: len(w.in_flight), default=None)

    def _answered(self, worker: _Worker, job_id: int | None, outcome) -> None:
        if job_id is None:  # the worker could not read the job's frame: answers come in order
            job_id = next(iter(worker.in_flight), None)
        job = worker.in_flight.pop(job_id, None)
        worker.served = True
        self._barren_workers = 0
        if job is not None:
            _settle(job.future, result=outcome)
        if not self.workers and not worker.in_flight:
            self._retire(worker)  # parsing went inline meanwhile: this one has finished its jobs

    def _drop_jobs(self, workers_to_retire) -> None:
        """Fail the backlog and the jobs of the workers chosen, which are retired."""
        for job in self._backlog:
            _settle(job.future, exc=FeedParseError(job.url, CLOSED))
        self._backlog.clear()
        for worker in [w for w in self._workers if workers_to_retire(w)]:
            for job in worker.in_flight.values():
                _settle(job.future, exc=FeedParseError(job.url, CLOSED))
            worker.in_flight.clear()
            self._retire(worker)

    def _adopt(self, loop: asyncio.AbstractEventLoop) -> None:
        """Parse in `loop` from now on: the jobs and workers of an earlier loop go with it."""
        self._drop_jobs(lambda w: w.loop is not None)
        self._loop = loop

    def _go_inline(self) -> None:
        self.workers = 0
        for worker in [w for w in self._workers if not w.in_flight]:
            self._retire(worker)  # the busy ones finish their jobs first (_answered)
        for job in self._backlog:
            _settle(job.future, exc=_Inline())
        self._backlog.clear()

    # ------------------------------------------------------------------ pipes

    def _write(self, worker: _Worker, data: bytes) -> None:
        """Write to the worker's stdin without blocking; the rest waits until the pipe has room."""
        if worker.loop is None:
            self._watch(worker)
        if worker.unsent:
            worker.unsent.append(memoryview(data))
            return
        try:
            written = os.write(worker.proc.stdin.fileno(), data)
        except BlockingIOError:
            written = 0
        except OSError:  # it is gone: its stdout's EOF settles its jobs
            worker.accepting = False
            return
        if written < len(data):
            worker.unsent.append(memoryview(data)[written:])
            worker.loop.add_writer(worker.proc.stdin.fileno(), self._flush, worker)

    def _flush(self, worker: _Worker) -> None:
        fd = worker.proc.stdin.fileno()
        while worker.unsent:
            chunk = worker.unsent[0]
            try:
                written = os.write(fd, chunk)
            except BlockingIOError:
                return
            except OSError:
                worker.accepting = False
                worker.unsent.clear()
                break
            if written < len(chunk):
                worker.unsent[0] = chunk[written:]
                return
            worker.unsent.popleft()
        worker.loop.remove_writer(fd)

    def _watch(self, worker: _Worker) -> None:
        worker.loop = self._loop
        worker.loop.add_reader(worker.proc.stdout.fileno(), self._read, worker)

    def _read(self, worker: _Worker) -> None:
        try:
            data = os.read(worker.proc.stdout.fileno(), _PIPE_SIZE)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._worker_ended(worker)
            self._dispatch()
            return
        buf = worker.received
        buf += data
        done = 0
        answers = []
        with memoryview(buf) as view:
            while len(view) - done >= _HEADER:
                size = int.from_bytes(view[done:done + _HEADER], "big")
                if len(view) - done - _HEADER < size:
                    break
                try:
                    answers.append(pickle.loads(view[done + _HEADER:done + _HEADER + size]))
                except Exception as exc:
                    # Not a result this bot can read (a worker running other code?): stop using that
                    # worker; its EOF fails the jobs still in flight.
                    log.error("feed parser process %d sent an unreadable result (%s); stopping it", worker.pid, exc)
                    worker.accepting = False
                    worker.proc.kill()
                    done = len(view)
                    break
                done += _HEADER + size
        del buf[:done]
        for job_id, outcome in answers:
            self._answered(worker, job_id, outcome)
        self._dispatch()

    # ------------------------------------------------------------------ workers

    def _top_up(self) -> None:
        """Start workers up to `self.workers`; parse inline from now on if none can start."""
        while self.workers and sum(w.accepting for w in self._workers) < self.workers:
            try:
                self._workers.append(self._spawn())
            except OSError as exc:
                # No worker can start here (process limits, no interpreter): no document is at
                # fault, so parse inline from now on rather than fail every feed.
                log.warning("cannot start a feed parser process (%s); parsing in the main process", exc)
                self._go_inline()

    @staticmethod
    def _spawn() -> _Worker:
        path = [os.getcwd() if p == "" else p for p in sys.path]  # as multiprocessing's spawn does
        flags = getattr(subprocess, "_args_from_interpreter_flags", list)()  # -X, -W, -O: as multiprocessing does
        proc = subprocess.Popen(
            [sys.executable, *flags, "-c", _BOOTSTRAP, str(os.getpid())],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None, close_fds=True,
            env={**os.environ, _PATH_ENV: json.dumps(path)})
        for pipe in (proc.stdin, proc.stdout):
            os.set_blocking(pipe.fileno(), False)
            try:
                fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, _PIPE_SIZE)
            except (AttributeError, OSError):
                pass
        return _Worker(proc)

    def _worker_ended(self, worker: _Worker) -> None:
        """The worker is gone (its stdout closed, or it was found dead between feeds)."""
        if worker not in self._workers:
            return
        jobs = list(worker.in_flight.values())
        worker.in_flight.clear()
        self._retire(worker)
        if worker.proc.poll() is None:
            worker.proc.kill()  # its stdout closed but it lives on, of no use to anyone
        status = worker.proc.wait()
        how = f"signal {-status}" if status < 0 else f"exit status {status}"
        if jobs:
            # The one it was reading fails; not retried inline: if the document crashed the parser,
            # it would crash the bot too. The others go first to the next worker.
            _settle(jobs[0].future, exc=FeedParseError(jobs[0].url, DIED))
            self._backlog.extendleft(reversed(jobs[1:]))
            log.error("feed parser process %d died (%s) while parsing %s; starting a new one%s", worker.pid, how,
                      jobs[0].url, f" for the {len(jobs) - 1} document(s) queued behind it" if len(jobs) > 1 else "")
        else:
            log.warning("feed parser process %d ended (%s) between feeds; the next feed starts a new one",
                        worker.pid, how)
        if not worker.served:
            self._barren_workers += 1
            if self.workers and self._barren_workers >= self.BARREN_WORKERS_BEFORE_INLINE:
                log.error("feed parser processes died %d times in a row before finishing any document; parsing in "
                          "the main process from now on (restart the bot after an upgrade)", self._barren_workers)
                self._go_inline()

    def _retire(self, worker: _Worker) -> None:
        """Stop using the worker and close its pipes (it exits at the EOF); reaped later."""
        if worker in self._workers:
            self._workers.remove(worker)
        worker.accepting = False
        self._exiting.append(worker)
        loop = worker.loop
        if loop is not None and not loop.is_closed():
            loop.remove_reader(worker.proc.stdout.fileno())
            loop.remove_writer(worker.proc.stdin.fileno())
        worker.loop = None
        worker.unsent.clear()
        for pipe in (worker.proc.stdin, worker.proc.stdout):
            try:
                pipe.close()
            except OSError:  # unflushed data in a pipe the worker no longer reads
                pass


def _settle(future: asyncio.Future, result=None, exc: BaseException | None = None) -> None:
    """Resolve a job's future unless it is done or its loop is gone (nobody waits for it then)."""
    if future.done() or future.get_loop().is_closed():
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)
