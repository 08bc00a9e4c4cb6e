"""Start `s3dest` commands for tests by forking a process that has imported s3dest once.

A test suite that starts `s3dest serve` ~200 times and runs ~200 CLI commands paid the
same imports every time: about 1.2 s of CPU of the ~1.4 s a CLI command costs and of the
~2.3 s a server needs to become healthy, on a 2-core machine that is the largest single
cost of `make test`. Here one process per test worker imports the command's modules and
then forks for each command: the child sets the environment, working directory and
standard streams it was given, closes everything else, and runs `s3dest.cli.main` with
the arguments, exactly as `python -m s3dest.cli …` would after its imports. Each command is
still a process of its own (its own pid, killable with SIGKILL, its own log and database
connections); only the import is shared.

Not used where a test measures the process itself (peak RSS includes the pages shared with
the forking process) or the command's start-up: `S3destEnv(exec_process=True)` runs
`python -m s3dest.cli` as before, and `S3DEST_TEST_EXEC=1` does so for every test.

The forking process stays single-threaded (a fork copies only the calling thread, so a
thread holding a lock at fork would leave it locked in the child): it imports modules, never
uses them, and answers one request at a time. It reaps its children and keeps their exit
statuses until asked.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

# What `python -m s3dest.cli` imports before it can serve or run a command (s3dest.app is
# loaded by `serve` inside its command; importing it here is what saves the most).
_PRELOAD = ("s3dest.cli", "s3dest.app", "s3dest.runtime")
_MAX_FDS = 3


def enabled() -> bool:
    """Under pytest, unless S3DEST_TEST_EXEC is set (bench/ scripts measure real starts)."""
    if os.environ.get("S3DEST_TEST_EXEC", "") in ("1", "true", "yes"):
        return False
    return "_pytest" in sys.modules


# -- the forking process ------------------------------------------------------------------


def _serve(control: socket.socket) -> None:
    import importlib

    for module in _PRELOAD:
        importlib.import_module(module)
    statuses: dict[int, int] = {}
    waiting: dict[int, float] = {}  # pid -> deadline of a `wait` asked for
    while True:
        _reap(statuses)
        for pid in [p for p in waiting if p in statuses or waiting[p] <= time.monotonic()]:
            del waiting[pid]
            control.sendall(_line({"pid": pid, "status": statuses.pop(pid, None)}))
        ready, _, _ = select.select([control], [], [], 0.02)
        if not ready:
            continue
        message, fds = _receive(control)
        if message is None:
            return  # the test worker went away
        if message["op"] == "run":
            pid = _fork(message, fds, control)
            control.sendall(_line({"pid": pid}))
        elif message["op"] == "status":
            pid = message["pid"]
            _reap(statuses)
            control.sendall(_line({"pid": pid, "status": statuses.pop(pid, None)}))
        elif message["op"] == "wait":
            waiting[message["pid"]] = time.monotonic() + message["timeout"]


def _reap(statuses: dict[int, int]) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        statuses[pid] = os.waitstatus_to_exitcode(status)


def _fork(message: dict[str, Any], fds: list[int], control: socket.socket) -> int:
    pid = os.fork()
    if pid:
        for fd in fds:
            os.close(fd)
        return pid
    # The child: becomes the command.
    try:
        control.close()
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
        os.closerange(3, 65536)
        os.chdir(message["cwd"])
        os.environ.clear()
        os.environ.update(message["env"])
        # s3dest.s3.writer sets this default when imported (it was imported before the
        # environment above was put in place).
        os.environ.setdefault("TOKIO_WORKER_THREADS", "1")
        sys.stdin = open(0, closefd=False)  # noqa: SIM115
        sys.stdout = open(1, "w", closefd=False, buffering=1)  # noqa: SIM115
        sys.stderr = open(2, "w", closefd=False, buffering=1)  # noqa: SIM115
        sys.argv = ["s3dest", *message["argv"]]
        from s3dest.cli import main

        code: int | str | None = 0
        try:
            main(args=message["argv"], prog_name="s3dest")
        except SystemExit as exit_:
            code = exit_.code
        status = code if isinstance(code, int) else (0 if code is None else 1)
        if isinstance(code, str):
            print(code, file=sys.stderr)
        # A normal interpreter exit: atexit handlers and non-daemon threads, as a real
        # process's end.
        sys.stdout.flush()
        sys.stderr.flush()
        sys.exit(status)
    except SystemExit:
        raise
    except BaseException:
        import traceback

        traceback.print_exc()
        os._exit(70)


def _line(message: dict[str, Any]) -> bytes:
    return json.dumps(message).encode() + b"\n"


def _receive(sock: socket.socket) -> tuple[dict[str, Any] | None, list[int]]:
    data, fds, _flags, _addr = socket.recv_fds(sock, 1 << 20, _MAX_FDS)
    if not data:
        return None, []
    return json.loads(data), list(fds)


# -- the test worker's side ---------------------------------------------------------------


class Zygote:
    """The forking process of this test worker, started on first use."""

    _instance: Zygote | None = None
    _instance_lock = threading.Lock()

    def __init__(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock = ours
        self._buffer = b""
        self._lock = threading.Lock()
        self._process = subprocess.Popen(
            [sys.executable, "-c", "import sys; from tests.support.zygote import main; main()"],
            pass_fds=[theirs.fileno()],
            env={**os.environ, "S3DEST_ZYGOTE_FD": str(theirs.fileno())},
            cwd=Path(__file__).resolve().parents[2],  # the repository root: `tests` imports
        )
        theirs.close()

    @classmethod
    def get(cls) -> Zygote:
        with cls._instance_lock:
            if cls._instance is None or cls._instance._process.poll() is not None:
                cls._instance = Zygote()
            return cls._instance

    def _ask(self, message: dict[str, Any], fds: list[int] | None = None) -> dict[str, Any]:
        with self._lock:
            payload = _line(message)
            if fds:
                socket.send_fds(self._sock, [payload], fds)
            else:
                self._sock.sendall(payload)
            while b"\n" not in self._buffer:
                chunk = self._sock.recv(65536)
                if not chunk:
                    raise RuntimeError("the test zygote process exited")
                self._buffer += chunk
            line, self._buffer = self._buffer.split(b"\n", 1)
            answer: dict[str, Any] = json.loads(line)
            return answer

    def run(
        self, argv: list[str], env: dict[str, str], stdin: int, stdout: int, stderr: int
    ) -> int:
        answer = self._ask(
            {"op": "run", "argv": argv, "env": env, "cwd": os.getcwd()}, [stdin, stdout, stderr]
        )
        return int(answer["pid"])

    def status(self, pid: int) -> int | None:
        status = self._ask({"op": "status", "pid": pid})["status"]
        return None if status is None else int(status)

    def wait(self, pid: int, timeout: float) -> int | None:
        status = self._ask({"op": "wait", "pid": pid, "timeout": timeout})["status"]
        return None if status is None else int(status)


class ForkedProcess:
    """The part of `subprocess.Popen` the tests use, for a command forked by the zygote."""

    def __init__(
        self, argv: list[str], env: dict[str, str], stdout: IO[Any] | int, stderr: IO[Any] | int
    ) -> None:
        out = stdout if isinstance(stdout, int) else stdout.fileno()
        err = stderr if isinstance(stderr, int) else stderr.fileno()
        with open(os.devnull, "rb") as devnull:
            self._zygote = Zygote.get()
            self.pid = self._zygote.run(argv, env, devnull.fileno(), out, err)
        self.returncode: int | None = None
        self.args = argv

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self._zygote.status(self.pid)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.returncode is None:
            left = 60.0 if deadline is None else deadline - time.monotonic()
            if left <= 0:
                raise subprocess.TimeoutExpired(self.args, timeout or 0)
            self.returncode = self._zygote.wait(self.pid, min(left, 60.0))
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):  # ended meanwhile
                os.kill(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)


def run_captured(
    argv: list[str], env: dict[str, str], timeout: float
) -> subprocess.CompletedProcess[str]:
    """`subprocess.run(capture_output=True, text=True)` of an `s3dest` command."""
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    try:
        process = ForkedProcess(argv, env, out_w, err_w)
    finally:
        os.close(out_w)
        os.close(err_w)
    chunks: dict[int, list[bytes]] = {out_r: [], err_r: []}
    open_fds = [out_r, err_r]
    deadline = time.monotonic() + timeout
    try:
        while open_fds:
            left = deadline - time.monotonic()
            if left <= 0:
                process.kill()
                process.wait(30)
                raise subprocess.TimeoutExpired(argv, timeout)
            ready, _, _ = select.select(open_fds, [], [], left)
            for fd in ready:
                data = os.read(fd, 65536)
                if data:
                    chunks[fd].append(data)
                else:
                    open_fds.remove(fd)
        code = process.wait(max(1.0, deadline - time.monotonic()))
    finally:
        os.close(out_r)
        os.close(err_r)
    return subprocess.CompletedProcess(
        ["s3dest", *argv],
        code,
        b"".join(chunks[out_r]).decode(errors="replace"),
        b"".join(chunks[err_r]).decode(errors="replace"),
    )


def main() -> None:
    """Entry point of the forking process (started by `Zygote`)."""
    control = socket.socket(fileno=int(os.environ.pop("S3DEST_ZYGOTE_FD")))
    # Interrupts go to the test worker's process group; this process ends with the worker.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _serve(control)


__all__ = ["ForkedProcess", "Zygote", "enabled", "run_captured"]
