"""The S3 server side of bench.pipeline and bench.batching: what a benchmark needs of the
server (moto's or RGW's), and a census of the TCP connections to it during a measurement.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
from typing import Any, Protocol

from s3dest.devtools.moto import Credentials


class S3Server(Protocol):
    """What the benchmark needs of an S3 server: moto's `S3Server` or `RgwServer`."""

    endpoint: str
    region: str
    admin_access_key_id: str
    admin_secret_access_key: str

    def client(self) -> Any: ...
    def create_bucket(self, name: str | None = None) -> str: ...
    def putonly_user(self, bucket: str) -> Credentials: ...


class ConnectionCensus:
    """TCP connections to the S3 server's port while a measurement runs, from `ss`.

    Every new connection takes a new ephemeral client port, so the number of distinct client
    ports seen says how many connections were opened: about the number of threads when the
    server keeps connections alive, about one per request when it closes them (moto), where
    sampling every 0.25 s sees only a fraction and TIME-WAIT sockets pile up instead.
    """

    def __init__(self, endpoint: str) -> None:
        self.port = int(endpoint.rstrip("/").rsplit(":", 1)[1])
        self.ports: set[str] = set()
        self.max_open = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.available = shutil.which("ss") is not None
        self.time_wait_before = 0

    def _ss(self, *args: str) -> list[str]:
        result = subprocess.run(
            ["ss", "-Htn", *args], capture_output=True, text=True, timeout=10, check=False
        )
        return [line for line in result.stdout.splitlines() if line.strip()]

    def time_wait(self) -> int:
        port = self.port
        return len(self._ss("state", "time-wait", f"( sport = :{port} or dport = :{port} )"))

    def sample(self) -> None:
        lines = self._ss("state", "established", f"( dport = :{self.port} )")
        self.samples += 1
        self.max_open = max(self.max_open, len(lines))
        for line in lines:
            fields = line.split()
            if len(fields) >= 4:
                self.ports.add(fields[2])  # the client's address:port

    def _loop(self) -> None:
        while not self._stop.wait(0.25):
            self.sample()

    def __enter__(self) -> ConnectionCensus:
        if self.available:
            self.time_wait_before = self.time_wait()
            self._thread = threading.Thread(target=self._loop, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def summary(self, requests: int) -> str:
        if not self.available:
            return "S3 connections: `ss` not installed, not counted"
        return (
            f"S3 connections (ss, port {self.port}, {self.samples} samples): "
            f"{len(self.ports)} distinct client connections seen for ~{requests} PUTs, "
            f"at most {self.max_open} open at once; "
            f"{self.time_wait() - self.time_wait_before} more sockets in TIME-WAIT than before"
        )
