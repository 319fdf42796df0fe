"""What the test servers on loopback share (the tracking receiver, the collector stand-in): a
threaded HTTP server that records every request, answers what a test's `behaviour` says, and
can go down (new connections refused, open ones cut) and come back on the same port.

Standard library only, so the receiver also runs outside the project's virtualenv.
"""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, List, Optional, Tuple, Type

RequestDict = Dict[str, Any]
Response = Tuple[int, Dict[str, str], bytes]
Behaviour = Callable[[RequestDict], Response]


class _Server(ThreadingHTTPServer):
    # Rebinding the same port right after stop() must work, even with sockets in
    # TIME_WAIT from the previous run.
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, address: Tuple[str, int], owner: LoopbackServer, handler: Type[LoopbackHandler]) -> None:
        self.owner = owner
        super().__init__(address, handler)


class LoopbackHandler(BaseHTTPRequestHandler):
    """A request handler whose connections its server can cut when it goes down."""

    # HTTP/1.1 so that clients with keep-alive (requests.Session) behave as they
    # would against a real server.
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle on, the body waits for the
    # client's delayed ACK and every request costs 40 ms.
    disable_nagle_algorithm = True
    content_type = "text/plain; charset=utf-8"
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.owner._track_connection(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.owner._track_connection(self.connection, add=False)

    def respond(self, status: int, headers: Dict[str, str], body: bytes) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        if "content-type" not in {k.lower() for k in headers}:
            self.send_header("Content-Type", self.content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        # Silence http.server's stderr access log; the servers keep their own records.
        pass


class LoopbackServer:
    """Start, stop (the port refuses), the recorded requests and waiting for them."""

    handler: Type[LoopbackHandler] = LoopbackHandler
    name = "loopback"
    default_answer: Response = (200, {}, b"")

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self.behaviour: Optional[Behaviour] = None
        self._requests: List[RequestDict] = []
        self._condition = threading.Condition()
        self._server: Optional[_Server] = None
        self._thread: Optional[threading.Thread] = None
        self._connections: set = set()
        self._connections_lock = threading.Lock()

    def start(self) -> Any:
        """Start listening; after a stop() this binds the same port again."""
        if self._server is not None:
            return self
        server = _Server((self.host, self.port), self, self.handler)
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"{self.name}-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening: new connections are refused, open ones are cut."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        # Keep-alive connections would otherwise keep being served by their
        # handler threads, and a "down" server would still answer.
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    @property
    def running(self) -> bool:
        return self._server is not None

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return "http://%s:%d" % (self.host, self.port)

    @property
    def requests(self) -> List[RequestDict]:
        """A copy of every recorded request, oldest first."""
        with self._condition:
            return list(self._requests)

    def clear(self) -> None:
        with self._condition:
            self._requests.clear()
            self._condition.notify_all()

    def wait_for(self, predicate: Callable[[List[RequestDict]], bool], timeout: float = 30) -> bool:
        """Block until ``predicate(requests)`` is true; False on timeout."""
        with self._condition:
            return self._condition.wait_for(lambda: bool(predicate(list(self._requests))), timeout=timeout)

    def wait_count(self, n: int, timeout: float = 30) -> bool:
        """Block until at least ``n`` requests were recorded."""
        return self.wait_for(lambda requests: len(requests) >= n, timeout=timeout)

    # ~~ used by the handlers

    def _answer(self, request: RequestDict) -> Response:
        behaviour = self.behaviour
        if behaviour is None:
            return self.default_answer
        try:
            status, headers, body = behaviour(request)
        except Exception as exc:  # a broken test behaviour must still answer
            return 500, {}, ("behaviour raised %r\n" % exc).encode("utf-8")
        return int(status), dict(headers or {}), body or b""

    def _record(self, request: RequestDict) -> None:
        with self._condition:
            self._requests.append(request)
            self._condition.notify_all()

    def _track_connection(self, conn: socket.socket, add: bool) -> None:
        with self._connections_lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)
