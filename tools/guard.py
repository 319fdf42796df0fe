"""A loopback HTTP(S) proxy that refuses everything and remembers who asked.

Test servers get ``HTTP(S)_PROXY`` pointing here and ``NO_PROXY`` covering
loopback, so any request OctoPrint (or a plugin, pip, sentry...) tries to make
to the outside world through the usual proxy-aware clients lands here instead,
is refused with 403, and is recorded. Tests assert that nothing was recorded:
that proves the offline config in tools/basedir.py is complete, rather than
just trusting it.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Optional

LOOPBACK_NO_PROXY = "127.0.0.1,localhost,::1"


class _Handler(BaseHTTPRequestHandler):
    server: _GuardServer

    def _refuse(self) -> None:
        self.server.guard._record(self.command, self.path)
        body = b"blocked by the test harness: no outside connections\n"
        self.send_response(403)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = _refuse
    do_CONNECT = _refuse  # HTTPS through a proxy starts with CONNECT host:443

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _GuardServer(ThreadingHTTPServer):
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, guard: OutboundGuard) -> None:
        self.guard = guard
        super().__init__(("127.0.0.1", 0), _Handler)


class OutboundGuard:
    """Records and refuses every proxied request."""

    def __init__(self) -> None:
        self._attempts: List[Dict[str, Any]] = []
        self._lock = threading.Lock()
        self._server: Optional[_GuardServer] = None
        self._thread: Optional[threading.Thread] = None

    def start(self) -> OutboundGuard:
        self._server = _GuardServer(self)
        self._thread = threading.Thread(target=self._server.serve_forever, name="outbound-guard", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def url(self) -> str:
        assert self._server is not None, "guard not started"
        return "http://127.0.0.1:%d" % self._server.server_address[1]

    def proxy_env(self) -> Dict[str, str]:
        """Environment that routes every non-loopback HTTP(S) request here."""
        env = {}
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
            env[name] = env[name.lower()] = self.url
        env["NO_PROXY"] = env["no_proxy"] = LOOPBACK_NO_PROXY
        return env

    @property
    def attempts(self) -> List[Dict[str, Any]]:
        with self._lock:
            return list(self._attempts)

    def clear(self) -> None:
        with self._lock:
            self._attempts.clear()

    def _record(self, method: str, target: str) -> None:
        with self._lock:
            self._attempts.append({"method": method, "target": target, "time": time.time()})
