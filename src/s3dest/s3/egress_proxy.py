"""The connect-time half of the endpoint policy: a loopback egress proxy, in process.

obstore (reqwest) resolves names itself and offers no hook between resolving and
connecting, so a name that passed at save time could later resolve to 127.0.0.1 (DNS
rebinding) and the PUT would go there. Clients for such names are given this proxy as
their `proxy_url` instead; the proxy resolves the name, asks the policy about every
address (`EgressPolicy.resolve`) and connects to exactly an address it checked — the idea
of Stripe's smokescreen. It speaks the two forms an HTTP client uses:

* `CONNECT host:port` for https: a checked TCP connection, then bytes both ways (TLS is
  end to end, so the certificate is still verified against the name);
* absolute-form requests (`PUT http://host:port/path`) for http: each request is
  forwarded to a checked connection, its body and the answer's body streamed.

It never follows a redirect (nor does obstore: see tests/security/test_redirects.py). A
refused target gets a 403 before any connection is made, so what listens there cannot
change the answer; the refusal's reason is kept per client (`refusal_since`) for the
writer to turn into an "endpoint not allowed" diagnosis. Clients authenticate with a
per-process token, so other local users cannot use it as an open relay.
"""

from __future__ import annotations

import base64
import contextlib
import hmac
import logging
import secrets
import socket
import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from s3dest.s3 import egress
from s3dest.s3.egress import EgressPolicy, EndpointRefused

log = logging.getLogger("s3dest.egress")

_MAX_HEAD = 64 * 1024
_CHUNK = 64 * 1024
_HEAD_TIMEOUT_S = 60.0  # an idle pooled client connection, waiting for its next request
_IDLE_TIMEOUT_S = 300.0  # no byte either way on a tunnel or a forwarded exchange
_CONNECT_TIMEOUT_S = 10.0
_HOP_BY_HOP = frozenset({"proxy-authorization", "proxy-connection", "keep-alive"})


class _Closed(Exception):
    """The peer closed the connection (or sent something unusable)."""


class _Reader:
    """Buffered reads from a socket, keeping what was read past the point asked for."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()

    def _fill(self) -> None:
        data = self.sock.recv(_CHUNK)
        if not data:
            raise _Closed
        self.buf += data

    def head(self) -> bytes:
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end >= 0:
                head = bytes(self.buf[: end + 4])
                del self.buf[: end + 4]
                return head
            if len(self.buf) > _MAX_HEAD:
                raise _Closed
            self._fill()

    def line(self) -> bytes:
        while True:
            end = self.buf.find(b"\r\n")
            if end >= 0:
                line = bytes(self.buf[: end + 2])
                del self.buf[: end + 2]
                return line
            if len(self.buf) > _MAX_HEAD:
                raise _Closed
            self._fill()

    def relay(self, count: int, out: socket.socket) -> None:
        while count > 0:
            if not self.buf:
                self._fill()
            piece = bytes(self.buf[:count])
            del self.buf[: len(piece)]
            out.sendall(piece)
            count -= len(piece)

    def relay_chunked(self, out: socket.socket) -> None:
        """Copy a chunked body as it is, framing included, up to its trailers' end."""
        while True:
            size_line = self.line()
            out.sendall(size_line)
            try:
                size = int(size_line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise _Closed from None
            if size == 0:
                while True:
                    trailer = self.line()
                    out.sendall(trailer)
                    if trailer == b"\r\n":
                        return
            self.relay(size + 2, out)

    def relay_to_eof(self, out: socket.socket) -> None:
        if self.buf:
            out.sendall(bytes(self.buf))
            self.buf.clear()
        while data := self.sock.recv(_CHUNK):
            out.sendall(data)


def _parse_head(head: bytes) -> tuple[str, list[tuple[str, str]]]:
    lines = head.decode("latin-1").split("\r\n")
    headers = []
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers.append((name.strip(), value.strip()))
    return lines[0], headers


def _header(headers: list[tuple[str, str]], name: str) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


def _split_host_port(authority: str, default_port: int) -> tuple[str, int]:
    parts = urlsplit("//" + authority)
    host = parts.hostname or ""
    try:
        port = parts.port or default_port
    except ValueError:
        raise _Closed from None
    return host, port


class EgressProxy:
    """A running proxy on 127.0.0.1 (see the module docstring); threads only."""

    def __init__(self, policy: Callable[[], EgressPolicy]) -> None:
        self._policy = policy
        self._token = secrets.token_urlsafe(24)
        self._refusals: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.port: int = self._listener.getsockname()[1]
        self.connections = 0  # upstream connections made, for tests and figures
        threading.Thread(target=self._accept, name="s3dest-egress", daemon=True).start()

    def url_for(self, client_id: str) -> str:
        """The proxy URL a client is given; its user name identifies it in refusals."""
        return f"http://{client_id}:{self._token}@127.0.0.1:{self.port}"

    def refusal_since(self, client_id: str, since: float) -> str | None:
        """The reason this client was last refused, if that was at `since` (monotonic)
        or later."""
        with self._lock:
            found = self._refusals.get(client_id)
        return found[1] if found and found[0] >= since else None

    # -- serving -------------------------------------------------------------------------

    def _accept(self) -> None:
        while True:
            client, _ = self._listener.accept()
            # Heads and bodies go out in separate writes: without this, Nagle's algorithm
            # and delayed ACKs add ~40 ms to every forwarded request.
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _client_id(self, headers: list[tuple[str, str]]) -> str | None:
        value = _header(headers, "proxy-authorization") or ""
        scheme, _, encoded = value.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, _, token = base64.b64decode(encoded).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        return user if hmac.compare_digest(token, self._token) else None

    def _serve(self, client: socket.socket) -> None:
        upstream: tuple[str, int, socket.socket, _Reader] | None = None
        try:
            client.settimeout(_HEAD_TIMEOUT_S)
            reader = _Reader(client)
            while True:
                head = reader.head()
                client.settimeout(_IDLE_TIMEOUT_S)
                request_line, headers = _parse_head(head)
                method, _, rest = request_line.partition(" ")
                target = rest.rpartition(" ")[0]
                client_id = self._client_id(headers)
                if client_id is None:
                    client.sendall(
                        b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                        b'Proxy-Authenticate: Basic realm="s3dest"\r\n'
                        b"Content-Length: 0\r\nConnection: close\r\n\r\n"
                    )
                    return
                if method == "CONNECT":
                    self._tunnel(client, reader, client_id, target)
                    return
                upstream = self._forward(
                    client, reader, client_id, method, target, headers, upstream
                )
                if upstream is None:
                    return
                client.settimeout(_HEAD_TIMEOUT_S)
        except (_Closed, OSError):
            pass
        finally:
            if upstream is not None:
                upstream[2].close()
            client.close()

    def _connect(self, client_id: str, host: str, port: int) -> socket.socket:
        """A connection to an address of `host` that the policy allows (raises)."""
        try:
            addresses = self._policy().resolve(host, port)
        except EndpointRefused as refused:
            with self._lock:
                if len(self._refusals) > 4096:  # one per client; clients come and go
                    self._refusals.clear()
                self._refusals[client_id] = (time.monotonic(), refused.reason)
            log.warning("egress refused for %s:%s: %s", host, port, refused.reason)
            raise
        last: OSError | None = None
        for address in addresses:
            try:
                sock = socket.create_connection((address, port), timeout=_CONNECT_TIMEOUT_S)
            except OSError as exc:
                last = exc
                continue
            sock.settimeout(_IDLE_TIMEOUT_S)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self.connections += 1
            return sock
        raise last or OSError("no address")

    @staticmethod
    def _refuse(client: socket.socket, reason: str) -> None:
        body = f"s3dest: endpoint not allowed: {reason}\n".encode()
        client.sendall(
            b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
        )

    def _tunnel(self, client: socket.socket, reader: _Reader, client_id: str, target: str) -> None:
        host, port = _split_host_port(target, 443)
        try:
            upstream = self._connect(client_id, host, port)
        except EndpointRefused as refused:
            self._refuse(client, refused.reason)
            return
        except OSError:
            client.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            return
        with upstream:
            client.sendall(b"HTTP/1.1 200 Connection Established\r\n\r\n")
            if reader.buf:
                upstream.sendall(bytes(reader.buf))
                reader.buf.clear()
            back = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
            back.start()
            _pump(client, upstream)
            back.join(_IDLE_TIMEOUT_S)

    def _forward(
        self,
        client: socket.socket,
        reader: _Reader,
        client_id: str,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        upstream: tuple[str, int, socket.socket, _Reader] | None,
    ) -> tuple[str, int, socket.socket, _Reader] | None:
        """Forward one absolute-form request; returns the upstream connection to keep,
        or None when the client connection is to be closed."""
        parts = urlsplit(target)
        if parts.scheme != "http" or not parts.hostname:
            client.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            return None
        host, port = _split_host_port(parts.netloc, 80)
        if upstream is None or upstream[:2] != (host, port):
            if upstream is not None:
                upstream[2].close()
            try:
                sock = self._connect(client_id, host, port)
            except EndpointRefused as refused:
                self._refuse(client, refused.reason)
                return None
            except OSError:
                client.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                return None
            upstream = (host, port, sock, _Reader(sock))
        sock, back = upstream[2], upstream[3]
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        lines = [f"{method} {path} HTTP/1.1"]
        lines += [f"{k}: {v}" for k, v in headers if k.lower() not in _HOP_BY_HOP]
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        if "chunked" in (_header(headers, "transfer-encoding") or "").lower():
            reader.relay_chunked(sock)
        else:
            reader.relay(int(_header(headers, "content-length") or 0), sock)
        while True:  # 1xx answers come before the real one
            head = back.head()
            client.sendall(head)
            status_line, response_headers = _parse_head(head)
            status = int(status_line.split(" ", 2)[1])
            if status >= 200 or status == 101:
                break
        close = "close" in (_header(response_headers, "connection") or "").lower()
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            pass
        elif "chunked" in (_header(response_headers, "transfer-encoding") or "").lower():
            back.relay_chunked(client)
        elif (length := _header(response_headers, "content-length")) is not None:
            back.relay(int(length), client)
        else:
            back.relay_to_eof(client)
            close = True
        if close or "close" in (_header(headers, "connection") or "").lower():
            sock.close()
            return None
        return upstream


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(_CHUNK):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


_proxy: EgressProxy | None = None
_proxy_lock = threading.Lock()


def shared_proxy() -> EgressProxy:
    """This process's proxy, started on first use; it asks the installed policy."""
    global _proxy
    with _proxy_lock:
        if _proxy is None:
            _proxy = EgressProxy(egress.current)
        return _proxy
