"""A tiny tracking receiver on loopback, for tests and for humans.

It answers ``GET`` and ``POST`` on ``/track/<id>/<event>/`` the way a tracking server
would, records every request, and lets a test choose the answer (500, 429 with
Retry-After, ...) to exercise the plugin's backoff.

Used from tests::

    receiver = Receiver()
    receiver.start()
    ... point the plugin at receiver.url_template ...
    assert receiver.wait_count(1, timeout=10)
    receiver.stop()   # the port now refuses connections
    receiver.start()  # same port again

Used by a human::

    python tools/receiver.py --port 8765 --log events.jsonl

Standard library only, so it also runs outside the project's virtualenv.
"""

from __future__ import annotations

import argparse
import datetime
import email.utils
import json
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import parse_qsl, unquote, urlsplit

RequestDict = Dict[str, Any]
Response = Tuple[int, Dict[str, str], bytes]
Behaviour = Callable[[RequestDict], Response]

TRACK_PREFIX = "/track/"


def _parse_track_path(path: str) -> Optional[Tuple[str, str]]:
    """``/track/<id>/<event>/`` -> (id, event); None for any other path."""
    if not path.startswith(TRACK_PREFIX):
        return None
    parts = [unquote(p) for p in path[len(TRACK_PREFIX) :].strip("/").split("/")]
    if len(parts) != 2 or not all(parts):
        return None
    return parts[0], parts[1]


class _Server(ThreadingHTTPServer):
    # Rebinding the same port right after stop() must work, even with sockets in
    # TIME_WAIT from the previous run.
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, address: Tuple[str, int], receiver: Receiver) -> None:
        self.receiver = receiver
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 so that clients with keep-alive (requests.Session) behave as they
    # would against a real server.
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle on, the body waits for the
    # client's delayed ACK and every request costs 40 ms.
    disable_nagle_algorithm = True
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.receiver._track_connection(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.receiver._track_connection(self.connection, add=False)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def _handle(self, method: str) -> None:
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""

        parsed = _parse_track_path(split.path)
        if method == "POST":
            params = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        else:
            params = dict(parse_qsl(split.query, keep_blank_values=True))

        request: RequestDict = {
            "method": method,
            # None for a path that is not /track/<id>/<event>/ (answered 404)
            "id": parsed[0] if parsed else None,
            "event": parsed[1] if parsed else None,
            "params": params,
            "received": time.time(),
            # extras beyond the documented keys, handy for assertions
            "path": split.path,
            "headers": dict(self.headers.items()),
        }
        if parsed is None:
            status, headers, payload = 404, {}, b"not a tracking url\n"
        else:
            status, headers, payload = self.server.receiver._answer(request)
        request["status"] = status
        # Record before answering: once a client sees the answer, the request is
        # already visible to wait_for().
        self.server.receiver._record(request)
        self._respond(status, headers, payload)

    def _respond(self, status: int, headers: Dict[str, str], body: bytes) -> None:
        self.send_response(status)
        lowered = {k.lower() for k in headers}
        for key, value in headers.items():
            self.send_header(key, value)
        if "content-type" not in lowered:
            self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        # Silence http.server's stderr access log; the receiver has its own output.
        pass


class Receiver:
    """A loopback tracking server that records what it receives."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self.behaviour: Optional[Behaviour] = None
        self.on_request: Optional[Callable[[RequestDict], None]] = None

        self._requests: List[RequestDict] = []
        self._condition = threading.Condition()
        self._server: Optional[_Server] = None
        self._thread: Optional[threading.Thread] = None
        self._connections: set = set()
        self._connections_lock = threading.Lock()

    # ~~ lifecycle

    def start(self) -> Receiver:
        """Start listening; after a stop() this binds the same port again."""
        if self._server is not None:
            return self
        server = _Server((self.host, self.port), self)
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"receiver-{self.port}",
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

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # ~~ addresses

    @property
    def url(self) -> str:
        return "http://%s:%d" % (self.host, self.port)

    @property
    def url_template(self) -> str:
        """The plugin's ``server`` setting pointing at this receiver."""
        return "http://%s:%d/track/{id}/{event}/" % (self.host, self.port)

    # ~~ recorded requests

    @property
    def requests(self) -> List[RequestDict]:
        """A copy of every recorded request, oldest first."""
        with self._condition:
            return list(self._requests)

    def events(self) -> List[str]:
        """The event names received so far, in order."""
        return [r["event"] for r in self.requests]

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

    def wait_event(self, event: str, count: int = 1, timeout: float = 30) -> bool:
        """Block until ``count`` requests for tracking event ``event`` arrived."""
        return self.wait_for(
            lambda requests: sum(1 for r in requests if r["event"] == event) >= count,
            timeout=timeout,
        )

    # ~~ internals used by the handler

    def _answer(self, request: RequestDict) -> Response:
        behaviour = self.behaviour
        if behaviour is None:
            return 200, {}, b"ok\n"
        try:
            status, headers, body = behaviour(request)
        except Exception as exc:  # a broken test behaviour must still answer
            return 500, {}, ("behaviour raised %r\n" % exc).encode("utf-8")
        return int(status), dict(headers or {}), body or b""

    def _record(self, request: RequestDict) -> None:
        with self._condition:
            self._requests.append(request)
            self._condition.notify_all()
        callback = self.on_request
        if callback is not None:
            callback(request)

    def _track_connection(self, conn: socket.socket, add: bool) -> None:
        with self._connections_lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)


# ~~ canned behaviours for fault tests


def respond(status: int, headers: Optional[Dict[str, str]] = None, body: bytes = b"") -> Behaviour:
    """A behaviour that always answers ``status``."""
    return lambda request: (status, dict(headers or {}), body)


def retry_after(seconds: float, status: int = 429) -> Behaviour:
    """A behaviour that answers ``status`` with a ``Retry-After`` in seconds."""
    return respond(status, {"Retry-After": str(int(seconds))})


def retry_after_date(when: float, status: int = 503) -> Behaviour:
    """A behaviour that answers with ``Retry-After`` as an HTTP date."""
    return respond(status, {"Retry-After": email.utils.formatdate(when, usegmt=True)})


def fail_first(n: int, status: int = 500) -> Behaviour:
    """Answer ``status`` to the first ``n`` requests, then 200."""
    lock = threading.Lock()
    seen = [0]

    def behaviour(request: RequestDict) -> Response:
        with lock:
            seen[0] += 1
            failing = seen[0] <= n
        return (status, {}, b"") if failing else (200, {}, b"ok\n")

    return behaviour


# ~~ command line


def format_request(request: RequestDict) -> str:
    """One human-readable line for a received request."""
    received = datetime.datetime.fromtimestamp(request["received"]).strftime("%H:%M:%S")
    params = dict(request["params"])
    line = f"{received}  {request['method']:<4} {request['event'] or request['path']:<24}"
    event_time = params.pop("event_time", None)
    if event_time is not None:
        try:
            ts = float(event_time)
            happened = datetime.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")
            line += f"  happened {happened} ({request['received'] - ts:.0f}s ago)"
        except ValueError:
            line += f"  event_time={event_time}"
    if params:
        line += "  " + " ".join(f"{k}={v}" for k, v in sorted(params.items()))
    status = request.get("status", 200)
    if status != 200:
        line += f"  -> {status}"
    return line


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Local tracking receiver (loopback only).")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port to bind (default 8765)")
    parser.add_argument("--log", help="append every request as a JSON line to this file")
    args = parser.parse_args(argv)

    log_lock = threading.Lock()

    def on_request(request: RequestDict) -> None:
        print(format_request(request), flush=True)
        if args.log:
            record = {k: request[k] for k in ("method", "id", "event", "params", "received", "status")}
            with log_lock, open(args.log, "a", encoding="utf-8") as f:
                f.write(json.dumps(record, sort_keys=True) + "\n")

    receiver = Receiver(args.host, args.port)
    receiver.on_request = on_request
    try:
        receiver.start()
    except OSError as exc:
        print(f"receiver: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    print(f"receiver: listening, plugin server URL: {receiver.url_template}", flush=True)
    stop = threading.Event()
    # SIGTERM (e.g. from ./dev) ends as cleanly as Ctrl-C does
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        receiver.stop()
        print("receiver: stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
