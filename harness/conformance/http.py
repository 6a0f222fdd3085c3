"""The suite's HTTP client: builds requests from operation ids, records every exchange, renders curl.

Every exchange goes through `on_exchange` (response validation, the envelope rules, effective
status), so each probe only asserts what it is about.
"""

from __future__ import annotations

import base64
import json
import shlex
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx

from harness.conformance.operations import operation
from harness.conformance.results import Evidence, Redactor
from harness.conformance.settings import Credential, Settings

NO_AUTH: dict[str, str] = {}
MAX_INLINE_BINARY = 8192
MAX_429_RETRIES = 3
MAX_RETRY_AFTER_S = 30.0
Params = Mapping[str, str | int | list[str]] | None


@dataclass(frozen=True)
class Exchange:
    """One request and its response, as the suite saw them."""

    operation: str
    method: str
    url: str
    request_headers: dict[str, str]
    request_body: bytes | None
    status: int
    response_headers: dict[str, str]
    response_body: bytes
    path: str = ""
    """Path relative to the API base path (what `operation_for` matches)."""

    @property
    def content_type(self) -> str:
        return self.response_headers.get("content-type", "")

    def json(self) -> Any:
        try:
            return json.loads(self.response_body) if self.response_body else None
        except ValueError:
            return None

    def curl(self) -> str:
        """The request as a shell command; a binary body (protobuf, gzip) travels as base64 through stdin."""
        parts = ["curl", "-sS", "-X", self.method]
        for name, value in self.request_headers.items():
            parts += ["-H", f"{name}: {value}"]
        prefix = ""
        if self.request_body:
            try:
                text: str | None = self.request_body.decode("utf-8")
            except UnicodeDecodeError:
                text = None
            if text is not None and self.request_headers.get("Content-Encoding") != "gzip":
                parts += ["--data-raw", text]
            elif len(self.request_body) <= MAX_INLINE_BINARY:
                prefix = f"printf %s {base64.b64encode(self.request_body).decode()} | base64 -d | "
                parts += ["--data-binary", "@-"]
            else:
                parts += ["--data-binary", f"@body.bin ({len(self.request_body)} bytes of binary body)"]
        parts.append(self.url)
        return prefix + " ".join(shlex.quote(p) for p in parts)

    def evidence(self, redact: Redactor) -> Evidence:
        body = self.response_body.decode("utf-8", errors="replace")
        return Evidence(redact(self.curl()), self.status, redact(body))


class RateLimiter:
    """At most `rate` requests a second across the suite's threads (0: unlimited)."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.next_at = 0.0
        self.lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self.lock:
            now = time.monotonic()
            delay = self.next_at - now
            self.next_at = max(now, self.next_at) + self.interval
        if delay > 0:
            time.sleep(delay)


@dataclass
class Api:
    settings: Settings
    on_exchange: Callable[[Exchange], None] = field(default=lambda _e: None)
    client: httpx.Client = field(init=False)
    limiter: RateLimiter = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx.Client(timeout=self.settings.timeout_s, follow_redirects=False)
        self.limiter = RateLimiter(self.settings.rate_limit)

    def close(self) -> None:
        self.client.close()

    def path(self, op_id: str, **path_params: str) -> str:
        s = self.settings
        values = {"org": s.org, "workspace": s.workspace, "project": s.project, **path_params}
        return operation(op_id).template.format(**values)

    def call(
        self,
        op_id: str,
        *,
        auth: Credential | Mapping[str, str] | None = None,
        params: Params = None,
        json_body: Any = None,
        content: bytes | None = None,
        content_type: str | None = None,
        method: str | None = None,
        extra_headers: Mapping[str, str] | None = None,
        **path_params: str,
    ) -> Exchange:
        """Call an operation; `auth` defaults to the main credential, `{}` sends none."""
        op = operation(op_id)
        path = self.path(op_id, **path_params)
        return self.request(op_id, method or op.method, path, auth=auth, params=params, json_body=json_body,
                            content=content, content_type=content_type, extra_headers=extra_headers)

    def request(
        self,
        op_id: str,
        method: str,
        path: str,
        *,
        auth: Credential | Mapping[str, str] | None = None,
        params: Params = None,
        json_body: Any = None,
        content: bytes | None = None,
        content_type: str | None = None,
        extra_headers: Mapping[str, str] | None = None,
        url: str | None = None,
    ) -> Exchange:
        headers: dict[str, str] = {}
        if auth is None:
            headers.update(self.settings.credential.headers())
        elif isinstance(auth, Credential):
            headers.update(auth.headers())
        else:
            headers.update(auth)
        body = content
        if json_body is not None:
            body = json.dumps(json_body).encode()
            headers["Content-Type"] = content_type or "application/json"
        elif content_type is not None:
            headers["Content-Type"] = content_type
        headers.update(extra_headers or {})
        query = urlencode(list(_flatten(params)), doseq=False) if params else ""
        target = (url or f"{self.settings.api_url}{path}") + (f"?{query}" if query else "")
        for attempt in range(MAX_429_RETRIES + 1):
            self.limiter.wait()
            response = self.client.request(method, target, headers=headers, content=body)
            exchange = Exchange(
                operation=op_id, method=method, url=target, request_headers=headers, request_body=body,
                status=response.status_code, response_headers={k.lower(): v for k, v in response.headers.items()},
                response_body=response.content, path=path,
            )
            self.on_exchange(exchange)  # a 429 is judged too (ENV007), then retried as it asks
            if exchange.status != 429 or attempt == MAX_429_RETRIES:
                break
            retry_after = exchange.response_headers.get("retry-after", "1").strip()
            time.sleep(min(MAX_RETRY_AFTER_S, float(retry_after) if retry_after.isdigit() else 1.0))
        return exchange


def _flatten(params: Params) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for name, value in (params or {}).items():
        if isinstance(value, list):
            pairs.extend((name, str(v)) for v in value)
        else:
            pairs.append((name, str(value)))
    return pairs
