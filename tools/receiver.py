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
import sys
import threading
import time
from typing import Callable, Dict, List, Optional, Tuple
from urllib.parse import parse_qsl, unquote, urlsplit

try:
    from .loopback import Behaviour, LoopbackHandler, LoopbackServer, RequestDict, Response
except ImportError:  # run as a script: python tools/receiver.py
    from loopback import Behaviour, LoopbackHandler, LoopbackServer, RequestDict, Response  # type: ignore[no-redef]

TRACK_PREFIX = "/track/"


def _parse_track_path(path: str) -> Optional[Tuple[str, str]]:
    """``/track/<id>/<event>/`` -> (id, event); None for any other path."""
    if not path.startswith(TRACK_PREFIX):
        return None
    parts = [unquote(p) for p in path[len(TRACK_PREFIX) :].strip("/").split("/")]
    if len(parts) != 2 or not all(parts):
        return None
    return parts[0], parts[1]


class _Handler(LoopbackHandler):
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
            status, headers, payload = self.server.owner._answer(request)
        request["status"] = status
        # Record before answering: once a client sees the answer, the request is
        # already visible to wait_for().
        self.server.owner._record(request)
        self.respond(status, headers, payload)


class Receiver(LoopbackServer):
    """A loopback tracking server that records what it receives."""

    handler = _Handler
    name = "receiver"
    default_answer = (200, {}, b"ok\n")

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self.on_request: Optional[Callable[[RequestDict], None]] = None

    @property
    def url_template(self) -> str:
        """The plugin's ``server`` setting pointing at this receiver."""
        return "http://%s:%d/track/{id}/{event}/" % (self.host, self.port)

    def events(self) -> List[str]:
        """The event names received so far, in order."""
        return [r["event"] for r in self.requests]

    def wait_event(self, event: str, count: int = 1, timeout: float = 30) -> bool:
        """Block until ``count`` requests for tracking event ``event`` arrived."""
        return self.wait_for(
            lambda requests: sum(1 for r in requests if r["event"] == event) >= count,
            timeout=timeout,
        )

    # ~~ used by the handler

    def _record(self, request: RequestDict) -> None:
        super()._record(request)
        callback = self.on_request
        if callback is not None:
            callback(request)


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
