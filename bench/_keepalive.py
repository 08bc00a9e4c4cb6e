"""A keep-alive HTTP/1.1 proxy in front of moto, in its own process (`bench.writer`,
`bench.pipeline --keepalive-proxy`).

Nothing here is part of s3dest; the benchmarks are scripts that print figures.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass

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
