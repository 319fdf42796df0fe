"""Delivery against a real HTTP server on 127.0.0.1."""

import email.utils
import socket
import threading
import time
from urllib.parse import parse_qs

import pytest
from werkzeug import Response

from octoprint_tracking_queued.delivery import Delivered, Delivery, Rejected, Retry, retry_after
from tools.guard import OutboundGuard

UID = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
NOW = 1_700_000_000.0


def record(event="print_done", post=False):
    return {
        "id": "abc123",
        "event": event,
        "params": {"origin": "local", "elapsed": 12, "ok": True},
        "post": post,
        "created": 1_600_000_000.5,
    }


@pytest.fixture
def delivery():
    d = Delivery(user_agent="OctoPrint/test", timeout=(1.0, 1.0), clock=lambda: NOW)
    yield d
    d.close()


def template(httpserver):
    return httpserver.url_for("/track/{id}/{event}/")


def test_200_delivers_get_with_event_time_and_id(httpserver, delivery):
    httpserver.expect_oneshot_request(f"/track/{UID}/print_done/", method="GET").respond_with_data("ok")
    assert delivery.send(record(), template(httpserver), UID) == Delivered(200)
    request, _ = httpserver.log[0]
    assert parse_qs(request.query_string.decode()) == {
        "origin": ["local"],
        "elapsed": ["12"],
        "ok": ["True"],
        "event_time": ["1600000000"],
        "event_id": ["abc123"],
    }
    assert b"+" not in request.query_string
    assert request.headers["User-Agent"] == "OctoPrint/test"


def test_pong_is_posted_as_form_body(httpserver, delivery):
    httpserver.expect_oneshot_request(f"/track/{UID}/pong/", method="POST").respond_with_data("ok")
    assert delivery.send(record("pong", post=True), template(httpserver), UID) == Delivered(200)
    request, _ = httpserver.log[0]
    assert parse_qs(request.get_data(as_text=True))["event_id"] == ["abc123"]


@pytest.mark.parametrize(
    "status,outcome",
    [
        (400, Rejected("HTTP 400")),
        (404, Rejected("HTTP 404")),
        (500, Retry("HTTP 500")),
        (503, Retry("HTTP 503")),
        (408, Retry("HTTP 408")),
        (425, Retry("HTTP 425")),
    ],
)
def test_status_codes(httpserver, delivery, status, outcome):
    httpserver.expect_request(f"/track/{UID}/print_done/").respond_with_data("x", status=status)
    assert delivery.send(record(), template(httpserver), UID) == outcome


def test_429_with_retry_after_seconds(httpserver, delivery):
    httpserver.expect_request(f"/track/{UID}/print_done/").respond_with_data(
        "slow down", status=429, headers={"Retry-After": "120"}
    )
    assert delivery.send(record(), template(httpserver), UID) == Retry("HTTP 429", 120.0)


def test_503_with_retry_after_date(httpserver):
    # An HTTP date is read against the answer's Date header (whole seconds, so within one).
    delivery = Delivery(timeout=(1.0, 1.0))
    when = email.utils.formatdate(time.time() + 90, usegmt=True)
    httpserver.expect_request(f"/track/{UID}/print_done/").respond_with_data(
        "maintenance", status=503, headers={"Retry-After": when}
    )
    outcome = delivery.send(record(), template(httpserver), UID)
    assert outcome.reason == "HTTP 503" and outcome.after == pytest.approx(90, abs=1.5)


def test_retry_after_date_is_read_against_the_answers_date_when_our_clock_is_behind(httpserver):
    # A board without a real-time clock, 40 days behind; the server's clock (its Date) is right.
    behind = Delivery(timeout=(1.0, 1.0), clock=lambda: time.time() - 40 * 86400)
    when = email.utils.formatdate(time.time() + 90, usegmt=True)
    httpserver.expect_request(f"/track/{UID}/print_done/").respond_with_data(
        "busy", status=503, headers={"Retry-After": when}
    )
    outcome = behind.send(record(), template(httpserver), UID)
    assert outcome.after == pytest.approx(90, abs=1.5), "not 40 days (6 hours, the cap)"
    date = email.utils.formatdate(NOW, usegmt=True)
    assert retry_after(email.utils.formatdate(NOW + 30, usegmt=True), NOW - 40 * 86400, date) == 30
    # Without a usable Date, our own clock is all there is.
    assert retry_after(email.utils.formatdate(NOW + 30, usegmt=True), NOW, "not a date") == 30


def test_retry_after_is_capped_and_tolerant():
    assert retry_after("999999", NOW) == 6 * 3600
    assert retry_after(email.utils.formatdate(NOW + 10 * 86400, usegmt=True), NOW) == 6 * 3600
    assert retry_after(email.utils.formatdate(NOW - 100, usegmt=True), NOW) == 0
    assert retry_after("soon", NOW) is None
    assert retry_after(None, NOW) is None


def test_hanging_server_times_out(delivery):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    accepted = []
    stop = threading.Event()

    def accept():
        conn, _ = listener.accept()
        accepted.append(conn)
        stop.wait(5)  # never answers

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        url = "http://127.0.0.1:%d/track/{id}/{event}/" % listener.getsockname()[1]
        assert delivery.send(record(), url, UID) == Retry("timeout")
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        listener.close()


def test_connection_refused_retries_without_leaking_the_url(delivery):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    outcome = delivery.send(record(), "http://127.0.0.1:%d/track/{id}/{event}/" % port, UID)
    assert isinstance(outcome, Retry)
    assert "refused" in outcome.reason.lower()
    assert UID not in outcome.reason and "127.0.0.1" not in outcome.reason


def test_redirect_loop_is_rejected(httpserver, delivery):
    httpserver.expect_request(f"/track/{UID}/print_done/").respond_with_response(
        Response(status=302, headers={"Location": f"/track/{UID}/print_done/"})
    )
    outcome = delivery.send(record(), template(httpserver), UID)
    assert isinstance(outcome, Rejected)


def test_keep_alive_uses_one_connection(delivery):
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    peers = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # werkzeug's test server closes every connection

        def do_GET(self):
            peers.append(self.client_address)
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = "http://127.0.0.1:%d/track/{id}/{event}/" % server.server_address[1]
        for _ in range(3):
            assert delivery.send(record(), url, UID) == Delivered(200)
    finally:
        delivery.close()
        server.shutdown()
        server.server_close()
    assert len(peers) == 3 and len(set(peers)) == 1


def test_the_environments_proxy_is_used_and_no_proxy_respected(httpserver, monkeypatch):
    # Read once per server rather than by requests on every send: the behaviour stays that
    # of a proxy-aware client. The guard is a proxy on 127.0.0.1 that refuses (403) and records.
    guard = OutboundGuard().start()
    try:
        for name, value in guard.proxy_env().items():
            monkeypatch.setenv(name, value)
        delivery = Delivery(user_agent="OctoPrint/test", timeout=(1.0, 1.0), clock=lambda: NOW)
        httpserver.expect_request(f"/track/{UID}/print_done/").respond_with_data("ok")
        assert delivery.send(record(), template(httpserver), UID) == Delivered(200)  # 127.0.0.1: NO_PROXY
        assert guard.attempts == []
        outside = "http://tracking.invalid/track/{id}/{event}/"
        assert delivery.send(record(), outside, UID) == Rejected("HTTP 403")
        assert [a["target"].split("?")[0] for a in guard.attempts] == [
            f"http://tracking.invalid/track/{UID}/print_done/"
        ]
        delivery.close()
    finally:
        guard.stop()


class _TricklingRaw:
    """A urllib3 response body without read1 (urllib3 before 2.2, all Python 3.7 gets): `read(n)`
    blocks until n bytes came, so it records the sizes asked for and answers at once."""

    def __init__(self) -> None:
        self.sizes: list = []

    def read(self, size: int) -> bytes:
        self.sizes.append(size)
        return b"x"  # a byte has arrived; a real read(4096) would wait for 4,095 more


class _Response:
    def __init__(self, raw: _TricklingRaw) -> None:
        self.raw = raw
        self.closed = False

    def close(self) -> None:
        self.closed = True


def test_without_read1_the_body_is_read_a_byte_at_a_time_so_the_deadline_holds():
    from octoprint_tracking_queued import delivery

    raw = _TricklingRaw()
    response = _Response(raw)
    delivery._drain(response, 0.05)  # type: ignore[arg-type]
    assert raw.sizes and set(raw.sizes) == {1}
    assert response.closed  # stopped (deadline or size limit) and dropped the connection
