"""otlp.py: the farm destination's wire, parsed strictly by the collector stand-in
(opentelemetry-proto's ExportLogsServiceRequest), and what each answer means (OTLP spec)."""

from __future__ import annotations

import pytest

from octoprint_tracking_queued import otlp
from octoprint_tracking_queued.delivery import Delivered, Rejected, Retry
from tools.collector import Collector, partial_success, respond, retry_after

NOW = 1_790_000_000


def record(n: int, **extra) -> dict:
    return {
        "id": f"{n:032x}",
        "event": "print_done",
        "params": {"origin": "local", "elapsed": 12 + n, "ok": True, "ratio": 0.5},
        "created": NOW + 30.25,
        "event_time": NOW + n,
        **extra,
    }


@pytest.fixture
def collector():
    c = Collector().start()
    yield c
    c.stop()


def send(collector: Collector, records, headers=None, extra=None):
    resource = otlp.resource("0123abcd-0000-4000-8000-0123456789ab", "1.11.8", extra or {})
    return otlp.Collector().send(records, collector.url, headers or {}, resource, "0.9")


def test_a_batch_is_one_strictly_valid_request_with_typed_attributes_and_true_times(collector):
    outcome = send(
        collector,
        [record(0), record(1, time_certain=False)],
        {"Authorization": "Bearer s3cret"},
        {"printer.name": "MK3S #7", "service.name": "not-this"},
    )
    assert outcome == Delivered(200)
    assert collector.invalid == []
    (request,) = collector.requests
    assert request["headers"]["Authorization"] == "Bearer s3cret"
    assert request["headers"]["Content-Type"] == "application/json"
    first, second = collector.records()
    assert first["time_unix_nano"] == NOW * 10**9
    assert first["observed_time_unix_nano"] == int((NOW + 30.25) * 10**9)
    assert (first["event_name"], first["body"], first["event_id"]) == ("print_done", "print_done", f"{0:032x}")
    assert first["attributes"] == {"origin": "local", "elapsed": 12, "ok": True, "ratio": 0.5, "event_id": f"{0:032x}"}
    assert otlp.UNCERTAIN not in first["attributes"] and second["attributes"][otlp.UNCERTAIN] is True
    assert first["resource"] == {
        "printer.name": "MK3S #7",
        "service.name": "octoprint",
        "service.version": "1.11.8",
        "service.instance.id": "0123abcd-0000-4000-8000-0123456789ab",
    }


def test_times_keep_the_fraction_of_a_second_so_events_of_one_second_stay_ordered(collector):
    send(collector, [record(0, event_time=NOW + 0.25), record(1, event_time=NOW + 0.75)])
    first, second = collector.records()
    # A double holds about a quarter of a microsecond at today's epoch.
    assert abs(first["time_unix_nano"] - (NOW * 10**9 + 250_000_000)) < 1000
    assert abs(second["time_unix_nano"] - (NOW * 10**9 + 750_000_000)) < 1000


def test_a_body_above_a_few_kilobytes_is_gzipped(collector):
    assert send(collector, [record(0)]) == Delivered(200)
    assert send(collector, [record(n) for n in range(100)]) == Delivered(200)
    small, large = collector.requests
    assert (small["gzip"], large["gzip"]) == (False, True)
    assert large["size"] < otlp.GZIP_ABOVE * 2 and len(collector.records()) == 101


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_only_the_retryable_answers_are_retried_and_retry_after_is_honoured(collector, status):
    collector.behaviour = retry_after(7, status)
    outcome = send(collector, [record(0)])
    assert isinstance(outcome, Retry) and outcome.after == 7.0 and outcome.reason.startswith(f"HTTP {status}")


@pytest.mark.parametrize("status", [400, 401, 404, 413, 500])
def test_any_other_error_is_a_dead_letter_with_its_reason(collector, status):
    collector.behaviour = respond(status, body={"code": 3, "message": "too large" if status == 413 else "no"})
    outcome = send(collector, [record(0)])
    assert isinstance(outcome, Rejected) and outcome.reason.startswith(f"HTTP {status}: ")


def test_a_partial_success_is_delivered_with_its_rejected_count_and_message(collector):
    collector.behaviour = partial_success(2, "attribute too long")
    assert send(collector, [record(0), record(1), record(2)]) == Delivered(200, 2, "attribute too long")


def test_a_connection_lost_without_an_answer_is_retried(collector):
    collector.stop()
    outcome = send(collector, [record(0)])
    assert isinstance(outcome, Retry) and outcome.reason.startswith("connection error")


def test_the_stand_in_refuses_what_the_schema_does_not_know(collector):
    import requests

    bad = otlp.export_request([record(0)], otlp.resource("x", "1", {}))
    bad["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]["eventTime"] = "1"  # no such field
    answer = requests.post(collector.url + otlp.LOGS_PATH, json=bad, timeout=5)
    assert answer.status_code == 400 and "eventTime" in collector.invalid[0]
