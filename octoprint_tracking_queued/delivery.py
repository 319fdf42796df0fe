"""One HTTP request per record, and what its answer means for the queue.

Never logs the URL or the instance id: both would leak the id into forum posts of logs.
"""

from __future__ import annotations

import email.utils
import http.client
import os
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Optional, Union
from urllib.parse import quote, urlencode, urlsplit

import requests

# Connect and read timeouts: short, so a dead server costs the worker little.
TIMEOUT = (3.05, 10.0)
MAX_RETRY_AFTER = 6 * 3600.0
RETRY_STATUS = {408, 425, 429}
MAX_REDIRECTS = 3
# The answer's body means nothing to us; we read a little of it only so the connection
# can be reused. A body that is long or never ends (a byte every few seconds keeps any
# read timeout happy) is cut off, or it would hold the worker forever.
BODY_LIMIT = 64 * 1024
BODY_DEADLINE = 5.0


@dataclass(frozen=True)
class Delivered:
    status: int
    rejected: int = 0  # records the destination took but dropped (OTLP partialSuccess)
    message: Optional[str] = None  # and why, in its words


@dataclass(frozen=True)
class Retry:
    reason: str
    after: Optional[float] = None  # seconds the server asked us to wait (Retry-After)


@dataclass(frozen=True)
class Rejected:
    reason: str


Outcome = Union[Delivered, Retry, Rejected]


def retry_after(value: Optional[str], now: float, date: Optional[str] = None) -> Optional[float]:
    """Seconds to wait from a Retry-After header (delta seconds or HTTP date), capped at 6 hours.

    An HTTP date is read against the answer's own Date header when it has one: a board
    without a real-time clock may be weeks behind, and "in 2 s" must not become 6 hours."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value) if value.isdigit() else None
    except ValueError:
        seconds = None
    if seconds is None:
        when = _http_date(value)
        if when is None:
            return None
        sent = _http_date(date) if date else None
        seconds = when - (now if sent is None else sent)
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def _http_date(value: str) -> Optional[float]:
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return None if when is None else when.timestamp()


def request_params(record: dict) -> dict:
    """Exactly what is sent: the record's params plus its original time and id."""
    params = dict(record.get("params") or {})
    # The queue knows when the event really happened (clock.py); a bare record has only its wall clock.
    params["event_time"] = int(record.get("event_time") or record.get("created") or 0)
    params["event_id"] = record.get("id")
    return params


def with_sent_params(records: Iterable[dict]) -> list[dict]:
    """Each record plus `sent`: exactly the parameters its request carries (None if undecodable)."""
    return [{**record, "sent": request_params(record) if record.get("id") else None} for record in records]


def encode(params: dict) -> str:
    # %20 rather than +, as the bundled plugin sends it.
    # errors="replace": a record queued before records.py cleaned lone surrogates must
    # still go out rather than fail forever at the head of the queue.
    return urlencode({k: _text(v) for k, v in params.items()}, quote_via=quote, errors="replace")


def _text(value: object) -> str:
    if isinstance(value, bool):
        return str(value)  # True/False, as the bundled plugin sends them
    return str(value)


def classify_status(status: int, headers: dict, now: float) -> Outcome:
    if 200 <= status < 300:
        return Delivered(status)
    if status in RETRY_STATUS or 500 <= status < 600:
        return Retry(f"HTTP {status}", retry_after(headers.get("Retry-After"), now, headers.get("Date")))
    if 300 <= status < 400:
        return Rejected(f"HTTP {status}: redirect not followed")
    return Rejected(f"HTTP {status}")


class Delivery:
    """Sends records over one keep-alive session."""

    def __init__(
        self,
        user_agent: str = "OctoPrint-TrackingQueued",
        timeout: tuple[float, float] = TIMEOUT,
        clock: Callable[[], float] = time.time,
        body_deadline: float = BODY_DEADLINE,
    ) -> None:
        self._body_deadline = body_deadline
        self._session = requests.Session()
        self._session.headers["User-Agent"] = user_agent
        self._session.max_redirects = MAX_REDIRECTS
        # requests reads the environment (proxies, no_proxy, CA bundle, netrc) again for every
        # request: a tenth of a millisecond each, a fifth of a backlog drain. We read the
        # proxies and the CA bundle once per server instead, and never send netrc credentials.
        self._session.trust_env = False
        self._session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        self._proxies: dict[str, dict[str, str]] = {}
        self._timeout = timeout
        self._clock = clock

    def proxies(self, url: str) -> dict[str, str]:
        """The environment's proxies for this URL's server (none when no_proxy covers it)."""
        server = urlsplit(url)[:2]
        key = f"{server[0]}://{server[1]}"
        if key not in self._proxies:
            if len(self._proxies) > 8:  # the server template changed more than a few times
                self._proxies.clear()
            self._proxies[key] = requests.utils.get_environ_proxies(url)
        return self._proxies[key]

    def url(self, template: str, unique_id: str, event: str) -> str:
        return template.format(id=quote(unique_id, safe=""), event=quote(event, safe=""))

    def send(self, record: dict, template: str, unique_id: str) -> Outcome:
        url = self.url(template, unique_id, record["event"])
        body = encode(request_params(record))
        options = {"timeout": self._timeout, "stream": True, "proxies": self.proxies(url)}
        try:
            if record.get("post"):
                response = self._session.post(
                    url, data=body, headers={"Content-Type": "application/x-www-form-urlencoded"}, **options
                )
            else:
                response = self._session.get(url, params=body, **options)
        except requests.Timeout:
            return Retry("timeout")
        except requests.TooManyRedirects:
            return Rejected("too many redirects")
        except requests.ConnectionError as error:
            return Retry(f"connection error: {error_reason(error)}")
        except requests.RequestException as error:
            return Retry(f"request failed: {error_reason(error)}")
        # The status line is the server's verdict; the body only has to be got out of the way.
        _drain(response, self._body_deadline)
        return classify_status(response.status_code, response.headers, self._clock())

    def close(self) -> None:
        self._session.close()


def _drain(response: requests.Response, seconds: float) -> None:
    """Reads a small body so the connection goes back to the pool; drops the connection otherwise."""
    raw = response.raw
    # read1: what has arrived, not a full chunk. urllib3 has it from 2.2 (Python 3.8+); the
    # 2.0 that Python 3.7 gets has not, and its read(4096) waits for all 4096 bytes of a
    # trickling body, past the deadline. One byte at a time returns as each arrives.
    read1 = getattr(raw, "read1", None)
    read = read1 if read1 is not None else (lambda _size: raw.read(1))
    deadline = time.monotonic() + seconds
    received = 0
    try:
        while received <= BODY_LIMIT and time.monotonic() < deadline:
            chunk = read(4096)
            if not chunk:
                response.close()
                return
            received += len(chunk)
    except Exception:
        pass
    response.close()


def error_reason(error: BaseException) -> str:
    """A short cause ("Connection refused") without the URL, which carries the instance id."""
    todo, seen = [error], set()
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OSError) and current.strerror:
            return current.strerror
        if isinstance(current, http.client.RemoteDisconnected):
            return "closed without an answer"
        if isinstance(current, http.client.HTTPException):
            return f"the answer is not HTTP ({type(current).__name__})"
        nested = [a for a in getattr(current, "args", ()) if isinstance(a, BaseException)]
        reason = getattr(current, "reason", None)
        if isinstance(reason, BaseException):
            nested.append(reason)
        nested += [e for e in (current.__cause__, current.__context__) if e is not None]
        todo.extend(nested)
    return type(error).__name__
