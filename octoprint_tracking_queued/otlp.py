"""The farm destination's wire: records as one OTLP/HTTP JSON `ExportLogsServiceRequest` per
batch, POSTed to `<endpoint>/v1/logs`, and what the answer means for the queue.

Follows opentelemetry-proto's docs/specification.md (OTLP/HTTP, JSON encoding): lowerCamelCase
field names, 64-bit integers as decimal strings, enums as numbers. Only the retryable answers
(429, 502, 503, 504, a connection lost without an answer) are retried, `Retry-After` honoured;
any other error is a dead letter with its reason; a 200 with `partialSuccess` is delivered and
its rejected count kept. No SDK: requests and the standard library build and send the JSON.
"""

from __future__ import annotations

import gzip
import json
import time
from typing import Any, Callable, Dict, Iterable, List, Mapping, Tuple

import requests

from .delivery import Delivered, Outcome, Rejected, Retry, error_reason, retry_after

LOGS_PATH = "/v1/logs"
# One request holds at most this many records, and about this much stored JSON.
BATCH_RECORDS = 100
BATCH_BYTES = 512 * 1024
# Bodies above this are gzipped: a batch of events shrinks about tenfold.
GZIP_ABOVE = 4 * 1024
RETRY_STATUS = {429, 502, 503, 504}
TIMEOUT = (3.05, 20.0)
ANSWER_LIMIT = 64 * 1024
SEVERITY_INFO = 9  # SeverityNumber SEVERITY_NUMBER_INFO
SCOPE = "octoprint_tracking_queued"
UNCERTAIN = "octoprint.event_time.uncertain"
NANOS = 1_000_000_000


def attribute(key: str, value: Any) -> Dict[str, Any]:
    """One OTLP KeyValue, typed: bool, int (a decimal string, as JSON carries int64), double, string."""
    if isinstance(value, bool):
        typed: Dict[str, Any] = {"boolValue": value}
    elif isinstance(value, int):
        typed = {"intValue": str(value)}
    elif isinstance(value, float):
        typed = {"doubleValue": value}
    else:
        typed = {"stringValue": "" if value is None else str(value)}
    return {"key": str(key), "value": typed}


def resource(instance_id: str, octoprint_version: str, extra: Mapping[str, Any]) -> Dict[str, Any]:
    """The printer: OTel's service attributes, then the configured extras (which may not
    override the three, so a farm always sees which instance sent a record)."""
    own = {"service.name": "octoprint", "service.version": octoprint_version, "service.instance.id": instance_id}
    merged = {**{k: v for k, v in extra.items() if k not in own}, **own}
    return {"attributes": [attribute(k, v) for k, v in merged.items()]}


def log_record(outgoing: Mapping[str, Any]) -> Dict[str, Any]:
    """One queued record (`Entry.outgoing`) as a LogRecord: its true time, when it was queued,
    the tracking event as name and body, its parameters and `event_id` as typed attributes."""
    event = str(outgoing.get("event") or "")
    params = dict(outgoing.get("params") or {})
    attributes = [attribute(k, v) for k, v in params.items()]
    attributes.append(attribute("event_id", outgoing.get("id")))
    if outgoing.get("time_certain") is False:
        # Made in an earlier boot whose wall clock was never confirmed: it may be wrong.
        attributes.append(attribute(UNCERTAIN, True))
    when = float(outgoing.get("event_time") or outgoing.get("created") or 0)
    queued = outgoing.get("created") or when
    return {
        "timeUnixNano": str(round(when * NANOS)),
        "observedTimeUnixNano": str(round(float(queued) * NANOS)),
        "severityNumber": SEVERITY_INFO,
        "severityText": "INFO",
        "eventName": event,
        "body": {"stringValue": event},
        "attributes": attributes,
    }


def export_request(
    records: Iterable[Mapping[str, Any]], resource_: Dict[str, Any], scope_version: str = ""
) -> Dict[str, Any]:
    """One ExportLogsServiceRequest: one resource (this printer), one scope (this plugin)."""
    return {
        "resourceLogs": [
            {
                "resource": resource_,
                "scopeLogs": [
                    {
                        "scope": {"name": SCOPE, "version": scope_version},
                        "logRecords": [log_record(r) for r in records],
                    }
                ],
            }
        ]
    }


def body(request: Dict[str, Any]) -> Tuple[bytes, Dict[str, str]]:
    """The bytes and headers of a request: compact JSON, gzipped when it is larger than a few kB."""
    data = json.dumps(request, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    headers = {"Content-Type": "application/json"}
    if len(data) > GZIP_ABOVE:
        data = gzip.compress(data, compresslevel=5)
        headers["Content-Encoding"] = "gzip"
    return data, headers


def classify(status: int, headers: Mapping[str, str], answer: bytes, now: float) -> Outcome:
    """What the collector's answer means (specification: OTLP/HTTP Response)."""
    if 200 <= status < 300:
        partial = _json(answer).get("partialSuccess") or {}
        try:
            rejected = int(partial.get("rejectedLogRecords") or 0)
        except (TypeError, ValueError):
            rejected = 0
        message = partial.get("errorMessage")
        return Delivered(status, rejected, str(message)[:200] if message else None)
    reason = f"HTTP {status}"
    message = _json(answer).get("message")
    if message:
        reason += f": {str(message)[:200]}"
    if status in RETRY_STATUS:
        return Retry(reason, retry_after(headers.get("Retry-After"), now, headers.get("Date")))
    return Rejected(reason)


def _json(answer: bytes) -> Dict[str, Any]:
    try:
        value = json.loads(answer.decode("utf-8")) if answer else {}
    except (UnicodeDecodeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


class Collector:
    """Sends batches to one OTLP/HTTP endpoint over a keep-alive session."""

    def __init__(
        self,
        user_agent: str = "OctoPrint-TrackingQueued",
        timeout: Tuple[float, float] = TIMEOUT,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._session = requests.Session()
        self._session.headers["User-Agent"] = user_agent
        # As delivery.py: no environment lookups per request, no netrc credentials.
        self._session.trust_env = False
        self._timeout = timeout
        self._clock = clock

    def send(
        self,
        records: List[Mapping[str, Any]],
        endpoint: str,
        headers: Mapping[str, str],
        resource_: Dict[str, Any],
        scope_version: str = "",
    ) -> Outcome:
        data, own = body(export_request(records, resource_, scope_version))
        try:
            response = self._session.post(
                endpoint + LOGS_PATH,
                data=data,
                headers={**headers, **own},
                timeout=self._timeout,
                allow_redirects=False,
                stream=True,
            )
        except requests.RequestException as error:
            # Lost without an answer (refused, reset, timed out): the specification retries these.
            return Retry(f"connection error: {error_reason(error)}")
        try:
            answer = response.raw.read(ANSWER_LIMIT, decode_content=True) or b""
        except Exception:
            answer = b""
        finally:
            response.close()
        if 300 <= response.status_code < 400:
            return Rejected(f"HTTP {response.status_code}: redirect not followed")
        return classify(response.status_code, response.headers, answer, self._clock())

    def close(self) -> None:
        self._session.close()
