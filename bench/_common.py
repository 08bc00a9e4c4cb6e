"""Shared helpers for the benchmarks: messages, CPU and memory of processes, load, output.

Nothing here is part of s3dest; the benchmarks are scripts that print figures.
"""

from __future__ import annotations

import os
import random
import string
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

# The benchmarks build destinations and stored bodies, and wait, with the tests' helpers.
from tests.support.builders import create_destination as create_destination
from tests.support.builders import data_of as data_of
from tests.support.builders import destination_fields as destination_fields
from tests.support.polling import wait_queue_empty as wait_queue_empty
from tests.support.polling import wait_until as wait_until

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024

# ---------------------------------------------------------------------------- processes


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of a live process, all its threads included (/proc/PID/stat)."""
    with open(f"/proc/{pid}/stat", "rb") as fh:
        raw = fh.read().decode()
    # The command name (field 2) may contain spaces; everything after the last ')' is fixed.
    fields = raw[raw.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / CLK_TCK


def proc_tree_cpu_seconds(pid: int) -> float:
    """utime + stime of a process plus its reaped children (cutime + cstime)."""
    with open(f"/proc/{pid}/stat", "rb") as fh:
        raw = fh.read().decode()
    fields = raw[raw.rindex(")") + 2 :].split()
    return sum(int(f) for f in fields[11:15]) / CLK_TCK


def proc_status_kib(pid: int, field: str) -> int:
    """A kB field of /proc/PID/status, e.g. VmHWM (peak RSS) or VmRSS."""
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def peak_rss_mib(pid: int) -> float:
    return proc_status_kib(pid, "VmHWM") / 1024


def tree_peak_rss_mib(pid: int) -> float:
    """Peak RSS of a server and its ingest worker processes (s3dest.ingest.processes): the
    server's, the forkserver's, and each worker's beyond the pages it was forked with (its
    forkserver's resident size, shared). Without workers, the server's own peak."""
    total = peak_rss_mib(pid)
    for child in children_of(pid):
        try:
            total += peak_rss_mib(child)
            inherited = rss_mib(child)
            for worker in children_of(child):
                total += max(0.0, peak_rss_mib(worker) - inherited)
        except (OSError, ValueError, KeyError):
            continue
    return total


def rss_mib(pid: int) -> float:
    return proc_status_kib(pid, "VmRSS") / 1024


def children_of(pid: int) -> list[int]:
    """Direct children of a process (via /proc/PID/task/*/children)."""
    out: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{task}/children") as fh:
                    out.extend(int(p) for p in fh.read().split())
            except OSError:
                pass
    except OSError:
        pass
    return out


def run_measured(
    argv: Sequence[str], *, env: dict[str, str] | None = None, cwd: str | None = None
) -> tuple[int, float, float, float, str]:
    """Run a command to completion: (exit code, wall s, CPU s, peak RSS MiB, output tail).

    CPU and peak RSS come from wait4() on the child, so they are exactly that process (and
    any children it waited for), whatever else this process is doing.
    """
    started = time.perf_counter()
    proc = subprocess.Popen(
        list(argv),
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    output = proc.stdout.read()  # drains the pipe; returns at EOF (the child exited)
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    cpu = usage.ru_utime + usage.ru_stime
    return (
        proc.returncode,
        wall,
        cpu,
        usage.ru_maxrss / 1024,
        output.decode(errors="replace")[-3000:],
    )


# ---------------------------------------------------------------------------- machine


def load_average() -> str:
    with open("/proc/loadavg") as fh:
        one, five, fifteen = fh.read().split()[:3]
    return f"load average {one}, {five}, {fifteen} on {os.cpu_count()} CPUs"


class LoadSampler:
    """Samples the 1-minute load average while a measurement runs."""

    def __init__(self) -> None:
        self.samples: list[float] = []

    def sample(self) -> None:
        with open("/proc/loadavg") as fh:
            self.samples.append(float(fh.read().split()[0]))

    def summary(self) -> str:
        if not self.samples:
            return "load: n/a"
        return (
            f"1-min load during run: min {min(self.samples):.2f}, "
            f"max {max(self.samples):.2f} ({os.cpu_count()} CPUs)"
        )


def machine_line() -> str:
    return f"{load_average()}; python {sys.version.split()[0]}"


# ---------------------------------------------------------------------------- messages

_ALPHABET = string.ascii_lowercase + string.digits


def _word(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(_ALPHABET) for _ in range(n))


def ingest_message(
    i: int, *, destination: str, size: int = 1024, rng: random.Random | None = None
) -> dict[str, Any]:
    """A HubSpot-like read message as producers send it; its stored body is ~`size` bytes."""
    rng = rng or random.Random(i)
    record_id = str(10_000_000 + i)
    fields = {
        "id": record_id,
        "email": f"{_word(rng, 8)}@example.com",
        "firstname": _word(rng, 7).title(),
        "lastname": _word(rng, 9).title(),
        "company": _word(rng, 12).title() + " Inc",
        "lifecyclestage": "lead",
    }
    message: dict[str, Any] = {
        "destination": destination,
        "action": "read",
        "provider": "hubspot",
        "groupRef": "group-42",
        "groupName": "Acme",
        "consumerRef": "consumer-7",
        "consumerName": "Jane",
        "installationId": "7d0c5f0e-2a2b-4f6e-9a1f-4f3c1b2a9e11",
        "installationUpdateTime": "2025-10-14T02:00:00.000000Z",
        "objectName": "contacts",
        "operationId": f"op-{i // 100:06d}",
        "operationTime": "2025-10-14T02:58:59.323405Z",
        "result": [{"fields": fields, "raw": {"id": record_id, "properties": {}}}],
    }
    # Pad the raw record to the requested body size.
    base = len(orjson.dumps({"data": data_of(message, project_id="p" * 36)}))
    pad = max(0, size - base - len(',"notes":""'))
    message["result"][0]["raw"]["properties"]["notes"] = _word(rng, pad)
    return message


def big_message_chunks(
    total_bytes: int, *, wrapped: bool, destination: str | None = None, record_bytes: int = 1024
) -> Iterator[bytes]:
    """Stream a ~`total_bytes` JSON message of many ~1 KiB records, in ~1 MiB pieces.

    ``wrapped``: ``{"data": {...}}`` as `s3dest put` takes it; otherwise a bare ingest message
    (with `destination`) as ``POST /v1/messages`` takes it.
    """
    head: dict[str, Any] = {
        "action": "read",
        "provider": "hubspot",
        "installationId": "7d0c5f0e-2a2b-4f6e-9a1f-4f3c1b2a9e11",
        "objectName": "contacts",
        "operationId": "op-big",
        "operationTime": "2025-10-14T02:58:59.323405Z",
    }
    if destination is not None:
        head = {"destination": destination, **head}
    opening = orjson.dumps(head)[:-1] + b',"result":['
    if wrapped:
        opening = b'{"data":' + opening
    closing = b"]}}" if wrapped else b"]}"
    rng = random.Random(1)
    filler = _word(rng, 4096)
    template = orjson.dumps(
        {
            "fields": {"id": "ID", "email": "x@example.com", "name": "NAME"},
            "raw": {"id": "ID", "properties": {"notes": "NOTES"}},
        }
    )
    overhead = len(template) - len(b"ID") * 2 - len(b"NAME") - len(b"NOTES")
    yield opening
    written = len(opening) + len(closing)
    buf = bytearray()
    i = 0
    while written < total_bytes:
        rid = str(100_000_000 + i).encode()
        name = filler[i % 1000 : i % 1000 + 12].encode()
        notes_len = max(1, record_bytes - overhead - 2 * len(rid) - len(name) - 1)
        start = (i * 7) % (len(filler) - notes_len) if notes_len < len(filler) else 0
        notes = (filler * (notes_len // len(filler) + 1))[start : start + notes_len].encode()
        record = (
            template.replace(b'"ID"', b'"' + rid + b'"')
            .replace(b'"NAME"', b'"' + name + b'"')
            .replace(b'"NOTES"', b'"' + notes + b'"')
        )
        if i:
            buf += b","
        buf += record
        written += len(record) + (1 if i else 0)
        i += 1
        if len(buf) >= 1024 * 1024:
            yield bytes(buf)
            buf.clear()
    if buf:
        yield bytes(buf)
    yield closing


def write_big_message(path: Path, total_bytes: int, *, wrapped: bool, **kwargs: Any) -> int:
    size = 0
    with path.open("wb") as out:
        for chunk in big_message_chunks(total_bytes, wrapped=wrapped, **kwargs):
            out.write(chunk)
            size += len(chunk)
    return size


# ---------------------------------------------------------------------------- output


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


@dataclass
class Check:
    name: str
    ok: bool | None  # None: not measured (pending / skipped)
    detail: str

    def line(self) -> str:
        mark = {True: "PASS", False: "FAIL", None: "PENDING"}[self.ok]
        return f"  [{mark}] {self.name}: {self.detail}"


def print_checks(checks: Sequence[Check]) -> None:
    print("\ntargets:")
    for check in checks:
        print(check.line())


def heading(text: str) -> None:
    print(f"\n== {text} ==", flush=True)


# ---------------------------------------------------------------------------- keep-alive proxy

# moto's server (werkzeug ≥ 2.1) answers every request with `Connection: close`, so every
# client pays a TCP connect + teardown (and the thread wake-ups around it) per PUT, which
# real S3 does not make anyone do. This proxy keeps client connections alive and forwards
# each request to moto on a fresh connection; it runs in its own process, so its CPU is not
# counted, like moto's. Bodies and headers pass through unchanged (SigV4 stays valid).
_PROXY = r"""
import asyncio, os, sys, threading, time

def _watchdog(parent):
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)

threading.Thread(target=_watchdog, args=(int(sys.argv[1]),), daemon=True).start()
UP_HOST, UP_PORT, PORT = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
DROP = {b"connection", b"keep-alive", b"proxy-connection", b"expect", b"transfer-encoding"}


async def read_head(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head[:-4].split(b"\r\n")
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers.append((name.strip(), value.strip()))
    return lines[0], headers


def get(headers, name):
    for k, v in headers:
        if k.lower() == name:
            return v
    return None


async def read_body(reader, headers, until_eof=False):
    te = get(headers, b"transfer-encoding")
    if te is not None and b"chunked" in te.lower():
        body = bytearray()
        while True:
            size = int((await reader.readline()).split(b";")[0].strip(), 16)
            if size == 0:
                while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                    pass
                return bytes(body)
            body += await reader.readexactly(size)
            await reader.readexactly(2)
    length = get(headers, b"content-length")
    if length is not None:
        n = int(length)
        return await reader.readexactly(n) if n else b""
    return await reader.read() if until_eof else b""


def render(first, headers, body, extra, length=None):
    out = [first]
    for k, v in headers:
        if k.lower() not in DROP and k.lower() != b"content-length":
            out.append(k + b": " + v)
    length = str(len(body)).encode() if length is None else length
    out.append(b"Content-Length: " + length)
    out.extend(extra)
    return b"\r\n".join(out) + b"\r\n\r\n" + body


async def handle(reader, writer):
    try:
        while True:
            try:
                first, headers = await read_head(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            expect = get(headers, b"expect")
            if expect is not None and expect.lower() == b"100-continue":
                writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            body = await read_body(reader, headers)
            method = first.split(b" ", 1)[0]
            up_r, up_w = await asyncio.open_connection(UP_HOST, UP_PORT)
            try:
                up_w.write(render(first, headers, body, [b"Connection: close"]))
                status, rheaders = await read_head(up_r)
                code = int(status.split(b" ")[1])
                if method == b"HEAD" or code in (204, 304) or 100 <= code < 200:
                    rbody = b""
                else:
                    rbody = await read_body(up_r, rheaders, until_eof=True)
            finally:
                up_w.close()
            # A HEAD answer keeps the upstream's Content-Length and has no body.
            length = get(rheaders, b"content-length") if method == b"HEAD" else None
            writer.write(render(status, rheaders, rbody, [b"Connection: keep-alive"], length))
            await writer.drain()
    except Exception as exc:
        print("proxy error:", repr(exc), file=sys.stderr, flush=True)
    finally:
        writer.close()


async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", PORT, backlog=1024)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()

try:
    import uvloop
    uvloop.install()
except ImportError:
    pass
asyncio.run(main())
"""


@dataclass
class KeepAliveProxy:
    endpoint: str
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def start_keepalive_proxy(upstream: str) -> KeepAliveProxy:
    """A keep-alive HTTP/1.1 front for `upstream` (http://host:port) in its own process."""
    import socket

    host, port = upstream.split("://", 1)[1].rstrip("/").rsplit(":", 1)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        listen = sock.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-c", _PROXY, str(os.getpid()), host, port, str(listen)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=None,
    )
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != b"ready":
        proc.kill()
        raise RuntimeError("the keep-alive proxy did not start")
    return KeepAliveProxy(f"http://127.0.0.1:{listen}", proc)


# ---------------------------------------------------------------------------- profiles


def summarize_collapsed(path: Path, *, top: int = 15, indent: str = "") -> str:
    """Top self and inclusive frames of a py-spy ``--format raw`` (collapsed stacks) file.

    py-spy leaves idle threads out by default, so the samples approximate Python CPU time.
    """
    self_counts: dict[str, int] = {}
    incl_counts: dict[str, int] = {}
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [f for f in stack.split(";") if not f.startswith(("thread (", "process "))]
        if not frames:
            continue
        total += count
        leaf = _short_frame(frames[-1])
        self_counts[leaf] = self_counts.get(leaf, 0) + count
        for frame in {_short_frame(f) for f in frames}:
            incl_counts[frame] = incl_counts.get(frame, 0) + count
    if not total:
        return f"{indent}(no samples)"
    lines = [f"{indent}{total} samples; top self:"]
    for name, count in sorted(self_counts.items(), key=lambda kv: -kv[1])[:top]:
        lines.append(f"{indent}  {100 * count / total:5.1f}%  {name}")
    lines.append(f"{indent}top inclusive:")
    for name, count in sorted(incl_counts.items(), key=lambda kv: -kv[1])[: top * 2]:
        lines.append(f"{indent}  {100 * count / total:5.1f}%  {name}")
    return "\n".join(lines)


def _short_frame(frame: str) -> str:
    # "claim (s3dest/store/queue/operations.py:123)" -> "claim (s3dest/store/queue/operations.py)"
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    filename = where.rsplit(":", 1)[0]
    for marker in ("site-packages/", "/src/", "/lib/python3"):
        if marker in filename:
            filename = filename.split(marker, 1)[1]
            break
    return f"{name} ({filename})" if filename else name


def categorize_collapsed(
    path: Path, rules: Sequence[tuple[str, Sequence[str]]], *, other: str = "other"
) -> list[tuple[str, float]]:
    """Share of samples per category: a stack goes to the first rule with a marker (a
    substring of a frame, e.g. ``"claim (s3dest/store/queue/"``) in any of its frames."""
    counts: dict[str, int] = {}
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_short_frame(f) for f in stack.split(";")]
        total += count
        for name, markers in rules:
            if any(m in f for m in markers for f in frames):
                counts[name] = counts.get(name, 0) + count
                break
        else:
            counts[other] = counts.get(other, 0) + count
    if not total:
        return []
    return sorted(((k, v / total) for k, v in counts.items()), key=lambda kv: -kv[1])
