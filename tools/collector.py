"""A strict OpenTelemetry collector stand-in on loopback: OTLP/HTTP logs, JSON encoding.

No real OpenTelemetry Collector can be installed on the test machines (it ships only as its
own binaries), so this one is strict instead: every body must be `application/json` (gzip
allowed) and parse as opentelemetry-proto's `ExportLogsServiceRequest` with protobuf's
`json_format.Parse`, unknown fields refused; anything else is answered 400 and counted in
`invalid`. A test picks the answer (429/503 with Retry-After, partialSuccess, 400, 413) or
stops it (connections refused), as with tools/receiver.py.

    collector = Collector().start()
    ... plugins.tracking_queued.collector.endpoint = collector.url ...
    assert collector.wait_records(10)
    collector.records()  # every log record that arrived with a 200, flattened

Needs the test dependencies (opentelemetry-proto, protobuf).
"""

from __future__ import annotations

import gzip
import json
import time
from typing import Any, Callable, Dict, List, Optional

from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from tools.loopback import Behaviour, LoopbackHandler, LoopbackServer

LOGS_PATH = "/v1/logs"


def _value(any_value: Any) -> Any:
    kind = any_value.WhichOneof("value")
    return None if kind is None else getattr(any_value, kind)


def _attributes(pairs: Any) -> Dict[str, Any]:
    return {pair.key: _value(pair.value) for pair in pairs}


# LogRecord.event_name came with OTLP 1.5; the opentelemetry-proto that Python 3.7 still gets
# (1.22) predates it. There the stand-in checks that one field itself and parses the rest strictly.
HAS_EVENT_NAME = "event_name" in LogRecord.DESCRIPTOR.fields_by_name


def _take_event_names(body: Dict[str, Any]) -> List[str]:
    """Removes each record's eventName (a non-empty string, or a ValueError), in order."""
    names = []
    for resource_logs in body.get("resourceLogs") or []:
        for scope_logs in resource_logs.get("scopeLogs") or []:
            for record in scope_logs.get("logRecords") or []:
                name = record.pop("eventName", "")
                if not isinstance(name, str):
                    raise ValueError(f"eventName is not a string: {name!r}")
                names.append(name)
    return names


def flatten(message: ExportLogsServiceRequest, event_names: Optional[List[str]] = None) -> List[Dict[str, Any]]:
    """Each log record of a parsed request, with its resource's attributes, as plain values
    (an int attribute is an int, as the collector's pipeline sees it)."""
    records = []
    for resource_logs in message.resource_logs:
        resource = _attributes(resource_logs.resource.attributes)
        for scope_logs in resource_logs.scope_logs:
            for record in scope_logs.log_records:
                attributes = _attributes(record.attributes)
                records.append(
                    {
                        "event_name": record.event_name if event_names is None else event_names[len(records)],
                        "body": _value(record.body),
                        "time_unix_nano": record.time_unix_nano,
                        "observed_time_unix_nano": record.observed_time_unix_nano,
                        "severity_number": record.severity_number,
                        "attributes": attributes,
                        "event_id": attributes.get("event_id"),
                        "resource": resource,
                        "scope": scope_logs.scope.name,
                    }
                )
    return records


def _quick(body: Dict[str, Any]) -> List[Dict[str, Any]]:
    """Each log record's name and event_id, read without the schema (not strict)."""
    return [
        {
            "event_name": record.get("eventName"),
            "event_id": next(
                (a["value"].get("stringValue") for a in record["attributes"] if a["key"] == "event_id"), None
            ),
        }
        for resource_logs in body["resourceLogs"]
        for scope_logs in resource_logs["scopeLogs"]
        for record in scope_logs["logRecords"]
    ]


class _Handler(LoopbackHandler):
    content_type = "application/json"

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        request: Dict[str, Any] = {
            "path": self.path,
            "headers": dict(self.headers.items()),
            "size": len(raw),
            "gzip": self.headers.get("Content-Encoding") == "gzip",
            "received": time.time(),
            "records": [],
        }
        problem = self._check(raw, request)
        if problem:
            request["invalid"] = problem
            status, headers, body = 400, {}, json.dumps({"code": 3, "message": problem}).encode()
        else:
            status, headers, body = self.server.owner._answer(request)
        request["status"] = status
        self.server.owner._record(request)
        self.respond(status, headers, body)

    def _check(self, raw: bytes, request: Dict[str, Any]) -> Optional[str]:
        """Why this request is not a valid OTLP/HTTP JSON logs export, or None (then parsed)."""
        if self.path != LOGS_PATH:
            return f"not {LOGS_PATH}: {self.path}"
        if self.headers.get("Content-Type", "").split(";")[0].strip() != "application/json":
            return f"Content-Type is not application/json: {self.headers.get('Content-Type')}"
        try:
            text = (gzip.decompress(raw) if request["gzip"] else raw).decode("utf-8")
            if not self.server.owner.strict:  # the benchmark's: it times the sender, not this parse
                request["records"] = _quick(json.loads(text))
                return None
            event_names = None
            if HAS_EVENT_NAME:
                message = json_format.Parse(text, ExportLogsServiceRequest(), ignore_unknown_fields=False)
            else:
                body = json.loads(text)
                event_names = _take_event_names(body)
                message = json_format.ParseDict(body, ExportLogsServiceRequest(), ignore_unknown_fields=False)
        except Exception as error:  # any parse problem is the sender's bug
            return f"not an ExportLogsServiceRequest: {error}"
        request["json"] = json.loads(text)
        request["records"] = flatten(message, event_names)
        return None


class Collector(LoopbackServer):
    """The stand-in: start, stop (the port refuses), answers chosen by `behaviour`; its `url`
    is the plugin's `collector.endpoint`."""

    handler = _Handler
    name = "collector"
    default_answer = (200, {}, b"{}")

    def __init__(self, host: str = "127.0.0.1", port: int = 0, strict: bool = True) -> None:
        """`strict=False` (benchmarks only) reads bodies as plain JSON, without the schema."""
        super().__init__(host, port)
        self.strict = strict

    def records(self, status: int = 200) -> List[Dict[str, Any]]:
        """The log records of the requests answered `status`, in order of arrival."""
        return [r for q in self.requests if q["status"] == status for r in q["records"]]

    @property
    def invalid(self) -> List[str]:
        return [q["invalid"] for q in self.requests if "invalid" in q]

    def wait_records(self, count: int, timeout: float = 30, predicate: Callable[[dict], bool] = lambda r: True) -> bool:
        """Until `count` records (that `predicate` accepts) arrived with a 200."""
        return self.wait_for(
            lambda qs: sum(1 for q in qs if q["status"] == 200 for r in q["records"] if predicate(r)) >= count,
            timeout,
        )


# ~~ answers a test may choose


def respond(status: int, headers: Optional[Dict[str, str]] = None, body: Any = None) -> Behaviour:
    data = json.dumps(body).encode() if isinstance(body, dict) else (body or b"")
    return lambda request: (status, dict(headers or {}), data)


def partial_success(rejected: int, message: str) -> Behaviour:
    """200 with `partialSuccess`: the collector took the batch but dropped `rejected` of it."""
    return respond(200, body={"partialSuccess": {"rejectedLogRecords": str(rejected), "errorMessage": message}})


def retry_after(seconds: int, status: int = 429) -> Behaviour:
    return respond(status, {"Retry-After": str(seconds)}, {"code": 8, "message": "slow down"})
