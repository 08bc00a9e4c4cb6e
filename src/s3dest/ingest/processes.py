"""Large ingest requests checked and stored in worker processes, off the server's GIL.

Checking a batch is CPU in Python (JSON events, validation, normalisation, the rows'
encoding and insert): ~1 s of CPU for 8 MiB. On threads of the serving process that CPU
holds the GIL, and every other tenant's request waits for it at each of its own steps
(the event loop, the request thread, the database driver): while one tenant posted 8 MiB
batches from 4 threads, another's simple GET took p99 0.7-2.8 s (issue 13, SPEC §7 "Fair
share"). A shorter switch interval did not help (p99 1.0 s at 5 ms, 1.8 s at 0.5 ms).

So a body of at least ``S3DEST_INGEST_PROCESS_BYTES`` is handed to one of
``S3DEST_INGEST_PROCESSES`` worker processes (as many as ingest threads by default, so
a thread never waits for a process; 0: none, all on the threads): the bytes of an inline
body, or the spooled file itself (its descriptor passed over a Unix socket, nothing
copied). The worker checks and stores it exactly as the server would — committed before
it answers — and writes the 202's body to a file the server passed it
(for tiny messages it is ~80% of the request's size); the serving process only sends that
file, counts the metrics and wakes its delivery worker. Small bodies (one message, a few
hundred) stay on the ingest thread, one at a time per project: a worker round trip would
cost more than their check, but a project's second small body in flight goes to a worker
too, so a flood of bodies just under the threshold is no way around it.

A worker that dies (killed, out of memory) fails only the requests it had, with a 503 and
nothing stored (its transaction never committed); the next request starts new workers.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
import signal
import socket
import sys
import tempfile
import threading
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import reduction
from typing import IO, Any

from s3dest.errors import StorageUnavailable
from s3dest.ingest.reader import ingest_body, ingest_spooled, spool_dir
from s3dest.ingest.service import Accepted, Ingestor
from s3dest.settings import Settings
from s3dest.store.engine import make_engine
from s3dest.store.idempotency import KeyClaim

log = logging.getLogger("s3dest.ingest")

# How much lower than the server's the worker processes' CPU priority is (nice(2)): a
# third of the weight of a normal thread, not less, so that big batches are not starved by
# delivery work on a busy machine (at nice 10, beside the test suite, a 32 MiB body took
# 4.4 s; 1.1 s alone).
WORKER_NICENESS = 5

# The worker's own ingestor and settings (set by `_start`, in the worker process only).
_worker: tuple[Ingestor, Settings] | None = None


def _start(settings: Settings, lifeline: socket.socket) -> None:
    global _worker
    # Ctrl-C reaches the whole process group: the server shuts its workers down itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_watch, args=(lifeline,), name="s3dest-lifeline", daemon=True).start()
    writer = ThreadPoolExecutor(1, thread_name_prefix="s3dest-ingest-write")
    writer.submit(int).result()  # its thread exists now, at the process's priority
    # Checking big bodies is throughput work; the serving process answers everyone's small
    # requests. Below it in the scheduler, a tenant's batches use idle CPU without starving
    # other tenants' requests (issue 13: B's GET p99 while A posts 8 MiB batches from 4
    # threads, RELIABILITY.md "Many tenants"). Only this thread is lowered (Linux's nice is
    # per thread): the writes, which hold SQLite's one write lock, run on `writer` at
    # normal priority, so a starved check never keeps other projects' writes waiting.
    os.nice(WORKER_NICENESS)
    _worker = (
        Ingestor(
            make_engine(settings), announce=False, write=lambda job: writer.submit(job).result()
        ),
        settings,
    )
    # As the server does (s3dest.app): what is loaded lives as long as the process; the
    # collector's full passes need not walk it again and again as a batch's objects churn.
    gc.freeze()


def _watch(lifeline: socket.socket) -> None:
    # The other end is the serving process's alone: it reads end-of-file when that process
    # is gone, killed included. A worker does not outlive its server (the pool's own
    # queues never tell a worker, and the forkserver stays while a worker lives).
    try:
        lifeline.recv(1)
    finally:
        os._exit(0)


def _ingest(project_id: str, body: bytes | Any, answer: Any, claim: KeyClaim | None) -> Accepted:
    """In a worker: check and store one request body (bytes, or a passed descriptor);
    the 202's JSON goes to the file `answer` (a passed descriptor)."""
    assert _worker is not None, "not an ingest worker process"
    ingestor, settings = _worker
    with os.fdopen(answer.detach(), "wb") as sink:
        if isinstance(body, bytes):
            accepted = ingest_body(ingestor, settings, project_id, body, sink=sink, claim=claim)
        else:
            with os.fdopen(body.detach(), "rb") as spool:
                spool.seek(0)
                accepted = ingest_spooled(
                    ingestor, settings, project_id, spool, sink=sink, claim=claim
                )
        accepted.finish()
    return accepted


def _context() -> multiprocessing.context.BaseContext:
    # forkserver: workers are forked from a clean process that has imported ingest once
    # (fast to start, no copy of the server's threads or locks); spawn where there is none.
    if sys.platform != "win32" and "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([__name__])
        return context
    return multiprocessing.get_context("spawn")


class IngestProcesses:
    """Where the body of ``POST /v1/messages`` is checked and stored: in a worker process
    when it is large (see the module), else on the calling thread."""

    def __init__(self, ingestor: Ingestor, settings: Settings) -> None:
        self.ingestor = ingestor
        self.settings = settings
        self._processes = max(0, settings.ingest_processes)
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None
        self._lifeline: tuple[socket.socket, socket.socket] | None = None
        # Projects with a small body being checked on an ingest thread (see ingest).
        self._on_threads: set[str] = set()

    def ingest(
        self, project_id: str, body: bytes | IO[bytes], *, claim: KeyClaim | None = None
    ) -> Accepted:
        """Check and store one request body (blocking: call it on an ingest thread); with
        an idempotency key's `claim`, its answer is saved in the messages' transaction."""
        size = len(body) if isinstance(body, bytes) else os.fstat(body.fileno()).st_size
        if not self._processes:
            return ingest_body(self.ingestor, self.settings, project_id, body, claim=claim)
        if size < self.settings.ingest_process_bytes and self._take_thread_turn(project_id):
            try:
                return ingest_body(self.ingestor, self.settings, project_id, body, claim=claim)
            finally:
                self._end_thread_turn(project_id)
        try:
            answer = tempfile.TemporaryFile(dir=spool_dir(self.settings))  # noqa: SIM115
        except OSError:
            # No room for the answer (a read-only or full data directory): on this thread,
            # which reports what the database says of it.
            return ingest_body(self.ingestor, self.settings, project_id, body, claim=claim)
        sent: bytes | Any = body if isinstance(body, bytes) else reduction.DupFd(body.fileno())
        try:
            pool = self._executor()
            try:
                job = pool.submit(
                    _ingest, project_id, sent, reduction.DupFd(answer.fileno()), claim
                )
                accepted: Accepted = job.result()
            except BrokenProcessPool:
                self._discard(pool)
                log.error("an ingest worker process died; its requests were not stored")
                raise StorageUnavailable(
                    "the ingest worker process handling this request stopped; nothing was "
                    "stored. Send it again"
                ) from None
        except BaseException:
            answer.close()
            raise
        answer.seek(0)  # the worker wrote through a descriptor of the same file
        accepted.body_file = answer  # the route sends it, and closes it
        self.ingestor.announce(accepted)
        return accepted

    def _take_thread_turn(self, project_id: str) -> bool:
        """Whether a small body of `project_id` may be checked on this thread: one at a
        time per project. A flood of requests just under the process threshold would
        otherwise hold the server's GIL from several threads at once; the others go to
        the worker processes, whatever their size."""
        with self._lock:
            if project_id in self._on_threads:
                return False
            self._on_threads.add(project_id)
            return True

    def _end_thread_turn(self, project_id: str) -> None:
        with self._lock:
            self._on_threads.discard(project_id)

    def _executor(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                if self._lifeline is None:
                    self._lifeline = socket.socketpair()
                self._pool = ProcessPoolExecutor(
                    self._processes,
                    mp_context=_context(),
                    initializer=_start,
                    initargs=(self.settings, self._lifeline[1]),
                )
            return self._pool

    def _discard(self, pool: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._pool is pool:
                self._pool = None
        pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        """Stop the workers (at shutdown; requests in flight have been answered)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        if self._lifeline is not None:
            for end in self._lifeline:
                end.close()
            self._lifeline = None
