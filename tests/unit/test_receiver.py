"""The tracking receiver the integration tests rely on."""

import json
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from tools.receiver import Receiver, fail_first, format_request, retry_after

RECEIVER_SCRIPT = Path(__file__).resolve().parents[2] / "tools" / "receiver.py"


@pytest.fixture
def receiver():
    r = Receiver().start()
    yield r
    r.stop()


def test_records_get_with_query_params(receiver):
    resp = requests.get(
        receiver.url_template.format(id="abc", event="print_done"),
        params={"event_time": "1700000000", "origin": "local"},
        timeout=5,
    )
    assert resp.status_code == 200
    (req,) = receiver.requests
    assert req["method"] == "GET"
    assert req["id"] == "abc"
    assert req["event"] == "print_done"
    assert req["params"] == {"event_time": "1700000000", "origin": "local"}
    assert abs(req["received"] - time.time()) < 5


def test_records_post_form_body(receiver):
    resp = requests.post(
        receiver.url_template.format(id="abc", event="pong"),
        data={"version": "1.11.8", "plugins": "a,b"},
        timeout=5,
    )
    assert resp.status_code == 200
    (req,) = receiver.requests
    assert (req["method"], req["event"]) == ("POST", "pong")
    assert req["params"] == {"version": "1.11.8", "plugins": "a,b"}


def test_other_paths_answer_404_and_are_recorded(receiver):
    assert requests.get(receiver.url + "/nope", timeout=5).status_code == 404
    (req,) = receiver.requests
    assert req["event"] is None and req["status"] == 404


def test_behaviour_controls_the_answer(receiver):
    receiver.behaviour = retry_after(7)
    resp = requests.get(receiver.url_template.format(id="x", event="e"), timeout=5)
    assert resp.status_code == 429
    assert resp.headers["Retry-After"] == "7"

    receiver.behaviour = fail_first(1, status=503)
    url = receiver.url_template.format(id="x", event="e")
    assert [requests.get(url, timeout=5).status_code for _ in range(2)] == [503, 200]
    assert [r["status"] for r in receiver.requests] == [429, 503, 200]


def test_broken_behaviour_answers_500(receiver):
    receiver.behaviour = lambda request: 1 / 0
    assert requests.get(receiver.url_template.format(id="x", event="e"), timeout=5).status_code == 500


def test_wait_for_wakes_on_request_from_another_thread(receiver):
    url = receiver.url_template.format(id="x", event="late")
    timer = threading.Timer(0.2, lambda: requests.get(url, timeout=5))
    timer.start()
    try:
        assert receiver.wait_for(lambda reqs: any(r["event"] == "late" for r in reqs), timeout=10)
    finally:
        timer.join()
    assert not receiver.wait_count(2, timeout=0.2)
    receiver.clear()
    assert receiver.requests == []


def test_stop_refuses_and_restart_reuses_port(receiver):
    port = receiver.port
    url = receiver.url_template.format(id="x", event="e")
    session = requests.Session()  # keep-alive, as the plugin's delivery uses
    assert session.get(url, timeout=5).status_code == 200

    receiver.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(url, timeout=5)
    # the kept-alive connection must not be served by a stopped receiver either
    with pytest.raises(requests.ConnectionError):
        session.get(url, timeout=5)

    receiver.start()
    assert receiver.port == port
    assert session.get(url, timeout=5).status_code == 200
    assert receiver.wait_count(2, timeout=5)


def test_format_request_shows_event_time():
    line = format_request(
        {
            "method": "GET",
            "id": "x",
            "event": "print_done",
            "path": "/track/x/print_done/",
            "params": {"event_time": "100", "origin": "local"},
            "received": 160.0,
        }
    )
    assert "print_done" in line and "(60s ago)" in line and "origin=local" in line


def test_cli_prints_and_logs_json_lines(tmp_path):
    log = tmp_path / "events.jsonl"
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, str(RECEIVER_SCRIPT), "--port", str(port), "--log", str(log)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        # the first line is printed once the socket listens: no polling needed
        assert "listening" in proc.stdout.readline()
        requests.get("http://127.0.0.1:%d/track/i/startup/" % port, params={"event_time": "1"}, timeout=5)
        assert "startup" in proc.stdout.readline()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    (record,) = [json.loads(line) for line in log.read_text().splitlines()]
    assert record["event"] == "startup" and record["params"] == {"event_time": "1"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
