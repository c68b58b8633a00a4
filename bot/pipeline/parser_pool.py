"""Feed parsing on another core.

A poll of many feeds is CPU-bound in one event loop: parsing (XML, HTML to text, boilerplate) is a
pure function of the body, so it runs in a worker process while the loop goes on fetching,
matching stories and writing to the store. A thread would not help (parsing holds the GIL).

No helper threads in the bot process either: the event loop itself talks to each worker over a
pair of pipes with asyncio's non-blocking pipe transports. (A ProcessPoolExecutor costs a
management thread and a queue feeder thread, which unpickled every result, rebuilt their wait sets
and woke the loop for each feed: about a millisecond of CPU per feed, fighting over the GIL with
the loop that is the bottleneck of a cold poll.) Here a job is a frame written to the worker's
stdin (4-byte big-endian length, then a pickle of `(job_id, args)`); the result comes back the
same way on its stdout and is unpickled in the read protocol's `data_received`, which resolves the
job's future. Writes are buffered by the transport, so a 10 MB body never blocks the loop. Each
worker keeps up to PIPELINE_DEPTH jobs in flight, so it goes from one document straight to the
next while the loop is busy; a new job goes to the worker with the fewest in flight, and waits its
turn (FIFO) when all are full.

Workers are started with subprocess.Popen, not fork: the bot process holds database connections,
sockets and scheduler threads that a forked child must not inherit. A worker gets the bot's
sys.path (the bot may run from a source tree that is not installed) and imports only
bot.pipeline.parser_worker. A worker that dies (a parser crash on a hostile document, the OOM killer)
costs only the feed it was parsing at that moment: that poll is recorded as a parse error
(retried at the next interval), the documents queued behind it go to a fresh worker, and one
that died between feeds costs nothing. Workers that die before finishing anything, several in a
row, mean no worker can run here (the code on disk was replaced under a running bot): parsing
goes inline.

The pipes belong to one event loop. A FeedParser used from a new loop (asyncio.run again) retires
the old loop's workers and starts fresh ones; close() is synchronous and works with the loop
running, stopped or closed.
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
import warnings

from bot.ingest.parse import FeedParseError, ParsedFeed
from bot.pipeline.parser_worker import parse_in_worker

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


class _Closed(Exception):
    """Raised to a job waiting for a worker when the parser is closed."""


class _NotStarted(Exception):
    """Raised to a job queued in a worker that died on an earlier document: it is sent again."""


class _Worker:
    """One worker process, its pipes (once attached to an event loop) and its jobs in flight."""

    def __init__(self, proc: subprocess.Popen):
        self.proc = proc
        self.pid = proc.pid
        self.loop: asyncio.AbstractEventLoop | None = None
        self.attaching: asyncio.Task | None = None
        self.connecting = False  # its pipes are being attached to `loop`
        self.jobs: asyncio.WriteTransport | None = None  # its stdin
        self.results: asyncio.ReadTransport | None = None  # its stdout
        self.in_flight: dict[int, tuple[asyncio.Future, str]] = {}  # job id -> (future, url), oldest first
        self.accepting = True  # False once it is known to be dying or retired
        self.gone = False  # its end has been handled (death noted, or retired by us)
        self.served = False  # has it returned a result?


class _ResultReader(asyncio.Protocol):
    """The worker's stdout: frames in, each resolving its job's future; EOF is the worker's end."""

    def __init__(self, parser: FeedParser, worker: _Worker):
        self._parser = parser
        self._worker = worker
        self._buf = bytearray()

    def data_received(self, data: bytes) -> None:
        worker = self._worker
        if worker.gone:
            return
        buf = self._buf
        buf += data
        results = []
        unreadable = None
        done = 0
        with memoryview(buf) as view:
            end = len(buf)
            while end - done >= _HEADER:
                size = int.from_bytes(view[done:done + _HEADER], "big")
                if end - done - _HEADER < size:
                    break
                try:
                    results.append(pickle.loads(view[done + _HEADER:done + _HEADER + size]))
                except Exception as exc:
                    unreadable = exc
                    break
                done += _HEADER + size
        del buf[:done]
        for job_id, outcome in results:
            self._parser._job_done(worker, job_id, outcome)
        if unreadable is not None and not worker.gone:
            # Not a result this bot can read (a worker running other code?): stop using that worker;
            # its EOF fails the jobs still in flight.
            log.error("feed parser process %d sent an unreadable result (%s); stopping it", worker.pid, unreadable)
            buf.clear()
            worker.accepting = False
            worker.proc.kill()

    def connection_lost(self, exc: Exception | None) -> None:
        self._parser._worker_ended(self._worker)


class _JobWriter(asyncio.Protocol):
    """The worker's stdin. Its loss only stops new jobs: the results already written still have to be
    read, and the worker's end is handled when its stdout closes."""

    def __init__(self, worker: _Worker):
        self._worker = worker

    def connection_lost(self, exc: Exception | None) -> None:
        self._worker.accepting = False


class FeedParser:
    """`await parse(body, content_type, url, matcher)`: parse_feed (and the entries' facts), inline
    (workers=0) or in worker processes."""

    # Workers in a row that died before finishing any job: no document does that; a worker that
    # cannot start does (the code on disk replaced under a running bot, a broken install).
    BARREN_WORKERS_BEFORE_INLINE = 3
    # Jobs written to a worker before its first result is back: it never waits for the loop.
    PIPELINE_DEPTH = 8
    # close(): how long workers get to exit after their job pipe closes, before they are killed.
    EXIT_GRACE = 2.0

    def __init__(self, workers: int):
        self.workers = max(0, workers)
        self._workers: list[_Worker] = []
        self._exiting: list[_Worker] = []  # retired or dead, not yet reaped
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop the pipes are attached to
        self._waiting: collections.deque[asyncio.Future] = collections.deque()  # jobs waiting for a slot
        self._job_ids = itertools.count(1)
        self._barren_workers = 0
        self._generation = 0  # bumped by close() and by a change of loop: jobs on their way give up

    # ------------------------------------------------------------------ public

    def start(self) -> None:
        """Start the workers now, so their imports overlap the bot's start-up, not its first poll."""
        self._top_up()

    async def parse(self, body: bytes, content_type: str | None, url: str, matcher=None) -> ParsedFeed:
        """parse_feed; with a TopicMatcher, each entry also gets its facts (bot.pipeline.facts) computed
        where it is parsed."""
        args = (body, content_type, url, matcher)
        try:
            if not self.workers:
                raise _Inline
            outcome = await self._in_worker(args, url)
        except _Inline:
            outcome = parse_in_worker(*args)  # the same work, inline
        except _Closed:
            raise FeedParseError(url, CLOSED) from None
        if isinstance(outcome, str):
            raise FeedParseError(url, outcome)
        return outcome

    def worker_pids(self) -> list[int]:
        """The live worker processes (for CPU and memory accounting)."""
        return [w.pid for w in self._workers if w.proc.returncode is None]

    def close(self) -> None:
        """Stop the workers (they exit when their job pipe closes), and reap them. Synchronous; the
        loop the pipes belong to may be running, stopped or closed. A later parse starts new workers."""
        self._generation += 1
        for waiter in self._waiting:
            self._settle(waiter, exc=_Closed())
        self._waiting.clear()
        for worker in list(self._workers):
            self._retire(worker, CLOSED)
        self._loop = None
        deadline = time.monotonic() + self.EXIT_GRACE
        for worker in self._exiting:
            self._detach(worker)  # pipes left open by a loop that stopped while attaching them
            try:
                worker.proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                worker.proc.kill()
                worker.proc.wait()
        self._exiting.clear()

    # ------------------------------------------------------------------ jobs

    async def _in_worker(self, args: tuple, url: str):
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._adopt(loop)
        generation = self._generation
        while True:
            worker = await self._free_worker(loop, generation)
            try:
                job_id = next(self._job_ids)
                frame = pickle.dumps((job_id, args), pickle.HIGHEST_PROTOCOL)
                header = len(frame).to_bytes(_HEADER, "big")
            except BaseException:
                self._wake(1)  # the slot is still free
                raise
            job = loop.create_future()
            worker.in_flight[job_id] = (job, url)
            # Buffered by the transport: never blocks the loop. (A big body is not copied to join the two.)
            if len(frame) < 1 << 16:
                worker.jobs.write(header + frame)
            else:
                worker.jobs.write(header)
                worker.jobs.write(frame)
            del frame
            try:
                return await job
            except _NotStarted:
                continue  # queued behind the document its worker died on: to the next worker

    async def _free_worker(self, loop: asyncio.AbstractEventLoop, generation: int) -> _Worker:
        """A worker attached to `loop` with a free slot, waiting in line for one if need be. Raises
        _Inline once parsing has fallen back to this process, _Closed if the parser was closed meanwhile."""
        queued = False
        while True:
            if not self.workers:
                raise _Inline
            if generation != self._generation:
                raise _Closed
            if queued or not self._waiting:  # first come, first served
                worker = self._least_busy()
                if not self.workers:
                    raise _Inline
                if worker is not None:
                    if worker.jobs is None:
                        await self._attach(worker, loop)
                        continue  # a moment has passed: look again
                    return worker
            waiter = loop.create_future()
            # One woken up but beaten to the slot by a newcomer keeps its place at the front.
            (self._waiting.appendleft if queued else self._waiting.append)(waiter)
            queued = True
            try:
                await waiter
            except BaseException:
                if waiter in self._waiting:
                    self._waiting.remove(waiter)
                elif waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                    self._wake(1)  # woken, then cancelled: pass the turn on
                raise

    def _least_busy(self) -> _Worker | None:
        """The running worker with the fewest jobs in flight, if it has room for one more; starts
        workers up to `self.workers`."""
        for worker in list(self._workers):
            if worker.jobs is not None and worker.jobs.is_closing():
                worker.accepting = False  # its stdin is gone: so is the worker, or it will be soon
            if worker.accepting and worker.proc.poll() is not None:
                worker.accepting = False
                if not worker.in_flight:
                    self._worker_ended(worker)  # died between feeds: nothing lost, nothing to wait for
                # else its stdout's EOF fails its jobs, once any results it wrote are read
        self._reap()
        self._top_up()
        ready = [w for w in self._workers if w.accepting]
        if not ready:
            return None
        worker = min(ready, key=lambda w: (len(w.in_flight), w.jobs is None))  # attached ones first
        return worker if len(worker.in_flight) < self.PIPELINE_DEPTH else None

    def _job_done(self, worker: _Worker, job_id: int | None, outcome) -> None:
        if job_id is None:  # the worker could not read the job's frame: answers come in order
            job_id = next(iter(worker.in_flight), None)
        job, _url = worker.in_flight.pop(job_id, (None, None))
        worker.served = True
        self._barren_workers = 0
        if job is not None:
            self._settle(job, result=outcome)
        if not self.workers and not worker.in_flight:
            self._retire(worker, CLOSED)  # parsing went inline meanwhile: this one has finished
        self._wake(1)

    def _wake(self, n: int | None = None) -> None:
        """Let `n` (default: all) jobs waiting for a slot look again."""
        while self._waiting and (n is None or n > 0):
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                n = None if n is None else n - 1

    @staticmethod
    def _settle(future: asyncio.Future, result=None, exc: BaseException | None = None) -> None:
        """Resolve a job's future unless it is done or its loop is gone (nobody waits for it then)."""
        if future.done() or future.get_loop().is_closed():
            return
        if exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(result)

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

    def _spawn(self) -> _Worker:
        path = [os.getcwd() if p == "" else p for p in sys.path]  # as multiprocessing's spawn does
        flags = getattr(subprocess, "_args_from_interpreter_flags", list)()  # -X, -W, -O: as multiprocessing does
        proc = subprocess.Popen(
            [sys.executable, *flags, "-c", _BOOTSTRAP, str(os.getpid())],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None, close_fds=True,
            env={**os.environ, _PATH_ENV: json.dumps(path)})
        for pipe in (proc.stdin, proc.stdout):
            try:
                fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, _PIPE_SIZE)
            except (AttributeError, OSError):
                pass
        return _Worker(proc)

    async def _attach(self, worker: _Worker, loop: asyncio.AbstractEventLoop) -> None:
        """Connect the worker's pipes to `loop` (once, however many jobs ask)."""
        if worker.attaching is None:
            worker.loop = loop
            worker.connecting = True
            worker.attaching = loop.create_task(self._connect(worker, loop))
        await asyncio.shield(worker.attaching)

    async def _connect(self, worker: _Worker, loop: asyncio.AbstractEventLoop) -> None:
        try:
            results, _ = await loop.connect_read_pipe(lambda: _ResultReader(self, worker), worker.proc.stdout)
            worker.results = results
            jobs, _ = await loop.connect_write_pipe(lambda: _JobWriter(worker), worker.proc.stdin)
            worker.jobs = jobs
        except Exception as exc:  # a loop that cannot watch pipes: no worker will do better
            worker.connecting = False
            log.warning("cannot connect to a feed parser process (%s); parsing in the main process", exc)
            self._go_inline()
            self._retire(worker, CLOSED)
            return
        worker.connecting = False
        if worker.gone:  # retired while connecting
            self._detach(worker)

    def _adopt(self, loop: asyncio.AbstractEventLoop) -> None:
        """Parse in `loop` from now on: workers attached to an earlier loop are replaced."""
        self._generation += 1
        for waiter in self._waiting:
            self._settle(waiter, exc=_Closed())
        self._waiting.clear()
        for worker in list(self._workers):
            if worker.loop is not None:
                self._retire(worker, CLOSED)
        self._loop = loop

    def _worker_ended(self, worker: _Worker) -> None:
        """The worker is gone (its stdout closed, or it was found dead between feeds)."""
        if worker.gone:
            return  # retired by us, or already noted
        jobs = list(worker.in_flight.values())
        self._retire(worker, DIED)
        status = worker.proc.poll()
        how = ("still running" if status is None else f"signal {-status}" if status < 0 else f"exit status {status}")
        if jobs:
            # Not retried inline: if a document crashed the parser, it would crash the bot too.
            log.error("feed parser process %d died (%s) while parsing %s; starting a new one%s", worker.pid, how,
                      jobs[0][1], f" for the {len(jobs) - 1} document(s) queued behind it" if len(jobs) > 1 else "")
        else:
            log.warning("feed parser process %d ended (%s) between feeds; the next feed starts a new one",
                        worker.pid, how)
        if not worker.served:
            self._barren_workers += 1
            if self.workers and self._barren_workers >= self.BARREN_WORKERS_BEFORE_INLINE:
                log.error("feed parser processes died %d times in a row before finishing any document; parsing in "
                          "the main process from now on (restart the bot after an upgrade)", self._barren_workers)
                self._go_inline()
        self._wake()

    def _go_inline(self) -> None:
        self.workers = 0
        for worker in list(self._workers):
            if not worker.in_flight:
                self._retire(worker, CLOSED)  # the busy ones finish their jobs first (_job_done)
        for waiter in self._waiting:
            self._settle(waiter, exc=_Inline())
        self._waiting.clear()

    def _retire(self, worker: _Worker, reason: str) -> None:
        """Stop using the worker: its pipes close (it exits at the EOF), its jobs fail with `reason`;
        it is reaped later (_reap, close)."""
        if worker.gone:
            return
        worker.gone = True
        worker.accepting = False
        if worker in self._workers:
            self._workers.remove(worker)
        self._exiting.append(worker)
        jobs = list(worker.in_flight.items())
        worker.in_flight.clear()
        for n, (_job_id, (job, url)) in enumerate(jobs):
            # A worker reads its jobs one after another, oldest first: one that died was reading the
            # oldest. The others it never started; they are not the cause and go to the next worker.
            retry = reason == DIED and n > 0
            self._settle(job, exc=_NotStarted() if retry else FeedParseError(url, reason))
        self._detach(worker)
        if worker.proc.poll() is None and (reason == DIED or worker.connecting):
            # DIED: its stdout closed but it lives on, of no use to anyone. Connecting: its pipes
            # close only once attached, and it has no job yet.
            worker.proc.kill()

    def _detach(self, worker: _Worker) -> None:
        """Close the worker's pipes, whatever the state of the loop they are attached to: running
        (close_app), stopped, or closed (close() after asyncio.run returned)."""
        loop = worker.loop
        if loop is not None and not loop.is_closed() and worker.connecting:
            # Again at the end of _connect: a pipe closed under a transport being set up could be
            # registered with the loop after its number went to another pipe.
            return
        transports = [t for t in (worker.jobs, worker.results) if t is not None]
        worker.jobs = worker.results = None
        worker.attaching = None
        if loop is not None and loop.is_running():
            for transport in transports:
                # Unregisters the fd from the loop at once (the pipe is closed right below); the
                # transport finishes closing in a moment. (One closing already has let go of its fd.)
                if not transport.is_closing():
                    transport.abort() if isinstance(transport, asyncio.WriteTransport) else transport.close()
        elif transports:
            # A loop that is not running cannot finish the transports' own close: take the pipes
            # off it here. Closed below, they make the transports' "unclosed transport" warning, as
            # they are dropped, a false alarm.
            if not loop.is_closed():
                for pipe in (worker.proc.stdin, worker.proc.stdout):
                    loop.remove_reader(pipe.fileno())
                    loop.remove_writer(pipe.fileno())
            worker.proc.stdin.close()
            worker.proc.stdout.close()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ResourceWarning)
                del transports
        worker.proc.stdin.close()
        worker.proc.stdout.close()

    def _reap(self) -> None:
        """Collect the exit status of workers that have ended (no zombies)."""
        if self._exiting:
            self._exiting = [w for w in self._exiting if w.proc.poll() is None]
