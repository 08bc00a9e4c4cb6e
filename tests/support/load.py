"""Helpers for the fair-share and memory tests (and bench/tenancy.py): a TCP listener that
accepts and never answers, the RSS of a process, and a probe timing one tenant's requests
while another loads the server."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx


class SilentListener:
    """Accepts connections on 127.0.0.1 and never sends a byte (a bucket that hangs)."""

    def __init__(self) -> None:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(512)
        self.port: int = self._sock.getsockname()[1]
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        self._sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            self._held.append(conn)  # kept open, never read from or written to

    @property
    def connections(self) -> int:
        """How many connections it has accepted (and holds)."""
        return len(self._held)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        for conn in self._held:
            conn.close()
        self._sock.close()


def vm_kib(pid: int, field_name: str) -> int:
    """VmHWM (peak) or VmRSS of a process, in KiB, from /proc/<pid>/status."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    raise AssertionError(f"no {field_name} for {pid}")


def reset_peak(pid: int) -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0: write 5 to clear_refs); False if not
    permitted, and then VmHWM keeps the process's lifetime peak."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as refs:
            refs.write("5")
        return True
    except OSError:
        return False


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


@dataclass
class LatencyProbe:
    """Times `request()` back to back on a thread until stopped (one tenant's view)."""

    request: Callable[[], httpx.Response]
    pause: float = 0.02
    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> LatencyProbe:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            try:
                response = self.request()
                if response.status_code >= 400:
                    self.failures.append(f"{response.status_code} {response.text[:200]}")
            except httpx.HTTPError as exc:
                self.failures.append(repr(exc))
            self.latencies.append(time.monotonic() - began)
            self._stop.wait(self.pause)

    def stop(self) -> list[float]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(60)
        return self.latencies


def process_tree(pid: int) -> set[int]:
    """`pid` and every process below it (a server's ingest workers and their forkserver)."""
    found = {pid}
    todo = [pid]
    while todo:
        parent = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except FileNotFoundError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{parent}/task/{task}/children") as children:
                    kids = {int(c) for c in children.read().split()} - found
            except FileNotFoundError:
                continue
            found |= kids
            todo.extend(kids)
    return found


class TreePeak:
    """The rise of peak RSS of a process and all below it (ingest work runs in worker
    processes: the server's own RSS alone would hide it). `start` resets each peak;
    `rise_mib` sums, over the processes there now, peak minus resident size at the start
    (all of the peak for a process started since)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.before: dict[int, int] = {}

    def start(self) -> TreePeak:
        self.before = {}
        for pid in process_tree(self.pid):
            try:
                exact = reset_peak(pid)
                self.before[pid] = vm_kib(pid, "VmRSS" if exact else "VmHWM")
            except (OSError, AssertionError):
                continue
        return self

    def rise_mib(self) -> float:
        total = 0
        for pid in process_tree(self.pid):
            try:
                total += vm_kib(pid, "VmHWM") - self.before.get(pid, self._forked_from(pid))
            except (OSError, AssertionError):
                continue
        return total / 1024

    def _forked_from(self, pid: int) -> int:
        # A process forked since the start (an ingest worker, from its forkserver) begins
        # with its parent's pages, shared: its own cost is what it adds to them.
        return self.before.get(vm_kib(pid, "PPid"), 0)


def warm_ingest_workers(url: str, api_key: str) -> None:
    """One batch above S3DEST_INGEST_PROCESS_BYTES to a disabled destination, so that the
    server's ingest worker processes (their imports, ~60 MiB resident) are there before a
    test measures the memory of a request."""
    from tests.support.builders import example_destination_fields

    headers = {"Authorization": f"Bearer {api_key}"}
    with httpx.Client(base_url=url, headers=headers, timeout=300) as http:
        held = example_destination_fields("warm-up", enabled=False)
        created = http.post("/v1/destinations", json=held)
        assert created.status_code in (201, 409), created.text
        one = {
            "destination": "warm-up",
            "action": "read",
            "provider": "p",
            "objectName": "o",
            "installationId": "i",
            "result": [{"fields": {"id": "x", "pad": "p" * 1000}}],
        }
        warm = http.post("/v1/messages", json={"messages": [one] * 400})
        assert warm.status_code == 202, warm.text[:300]
