"""A misbehaving HTTP server on 127.0.0.1, written on raw sockets.

Werkzeug-based test servers always speak correct HTTP; the faults we need (silence,
resets, a trickle of bytes, an SSH banner) happen below HTTP, so this one answers
each connection with a scripted behaviour and then `ok` once the script is used up.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from typing import Callable, Optional
from urllib.parse import parse_qs, urlsplit

Behaviour = Callable[["FaultServer", socket.socket, str], None]


def _read_request(conn: socket.socket) -> str:
    """The request head and form body as text ('' when the peer went away)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return ""
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return (head + b"\r\n\r\n" + body).decode("utf-8", "replace")


def answer(status: int, headers: Optional[dict] = None, body: bytes = b"ok") -> Behaviour:
    def behave(server: FaultServer, conn: socket.socket, request: str) -> None:
        lines = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}", "Connection: close"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)

    return behave


OK = answer(200)


def hang(server: FaultServer, conn: socket.socket, request: str) -> None:
    """Accepts, reads, never answers (until the server stops)."""
    server.stopping.wait()


def reset(server: FaultServer, conn: socket.socket, request: str) -> None:
    """Closes with RST instead of FIN: the client sees 'Connection reset by peer'."""
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def not_http(server: FaultServer, conn: socket.socket, request: str) -> None:
    conn.sendall(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n")


def dribble(interval: float, response: bytes = b"") -> Behaviour:
    """A correct, complete answer sent one byte at a time."""
    response = response or b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"

    def behave(server: FaultServer, conn: socket.socket, request: str) -> None:
        for i in range(len(response)):
            if server.stopping.wait(interval):
                return
            conn.sendall(response[i : i + 1])

    return behave


def trickle_forever(interval: float) -> Behaviour:
    """Status and headers, then a body that never ends, a byte per `interval`.

    Each byte arrives well within any read timeout, so only a total deadline ends it.
    """

    def behave(server: FaultServer, conn: socket.socket, request: str) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
        while not server.stopping.wait(interval):
            try:
                conn.sendall(b"x")
            except OSError:
                return

    return behave


def redirect_loop(server: FaultServer, conn: socket.socket, request: str) -> None:
    path = request.split(" ", 2)[1] if request else "/"
    answer(302, {"Location": path})(server, conn, request)


class FaultServer:
    """Serves each connection with the next scripted behaviour, then OK."""

    def __init__(self) -> None:
        self.script: list[Behaviour] = []
        self.default: Behaviour = OK  # once the script is used up
        self.requests: list[str] = []  # request heads and bodies, in arrival order
        self.delivered: list[dict] = []  # query/form params of requests answered 2xx by OK
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self.port = self._sock.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def template(self) -> str:
        return f"http://127.0.0.1:{self.port}/track/{{id}}/{{event}}/"

    def then(self, *behaviours: Behaviour) -> FaultServer:
        with self._lock:
            self.script.extend(behaviours)
        return self

    def _serve(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            if self.stopping.is_set():
                conn.close()
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.settimeout(10)
                request = _read_request(conn)
                with self._lock:
                    behaviour = self.script.pop(0) if self.script else None
                    if request:
                        self.requests.append(request)
                if behaviour is None:
                    behaviour = self.default
                if behaviour is OK:
                    self.delivered.append(params_of(request))
                behaviour(self, conn, request)
            except OSError:
                pass

    def stop(self) -> None:
        self.stopping.set()
        # Wake the accept() and let its thread end before the socket is closed: closed under
        # a thread about to call accept(), its descriptor number went to the next test's
        # server, and this server's thread took that server's connections (a flaky suite).
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._thread.join(5)
        self._sock.close()


def params_of(request: str) -> dict:
    """The query (GET) or form body (POST) of a request as a flat dict."""
    head, _, body = request.partition("\r\n\r\n")
    target = head.split(" ", 2)[1] if " " in head else ""
    query = urlsplit(target).query
    raw = body if head.startswith("POST") else query
    return {k: v[0] for k, v in parse_qs(raw).items()}


def closed_port() -> int:
    """A loopback port nothing listens on (connections are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0, interval: float = 0.01) -> bool:
    """Polls a condition owned by another thread we cannot hook; True when it held in time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
