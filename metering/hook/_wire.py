"""Measure Data API calls from the HTTP exchange itself, through botocore's events.

Per HTTP attempt botocore emits, on the client's own event system:

- ``before-send.rds-data.<Operation>`` with the prepared request, whose body is exactly
  the bytes written to the connection (after serialisation and signing);
- ``response-received.rds-data.<Operation>`` with the raw response dict (the body bytes as
  read from the connection, undecoded) and the parsed response, whose
  ``ResponseMetadata.RequestId`` is the id AWS logs as CloudTrail's ``requestID``.

A call is synchronous in its thread, so the two events of one attempt meet in a
thread-local slot. Each attempt that got an answer is one request AWS saw (a retried call
is several CloudTrail events, each with its own request id), so each becomes one
measurement. Handlers never raise: a metering problem must not break the caller's call.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger("metering.hook")


@dataclass(frozen=True, slots=True)
class Exchange:
    """One HTTP request/response of a Data API call, as measured on the wire."""

    tenant_id: str
    operation: str
    ts: datetime
    request_bytes: int
    response_bytes: int
    request_id: str
    status: int
    error_code: str | None = None  # the Data API error code (or HTTP status); None: success


def body_length(body: object) -> int:
    """Bytes of an HTTP body as botocore holds it (bytes, str, file-like or None)."""
    if body is None:
        return 0
    if isinstance(body, bytes | bytearray):
        return len(body)
    if isinstance(body, memoryview):
        return body.nbytes
    if isinstance(body, str):
        return len(body.encode("utf-8"))
    seek = getattr(body, "seek", None)
    tell = getattr(body, "tell", None)
    if callable(seek) and callable(tell):
        start = tell()
        end = seek(0, 2)
        seek(start)
        return int(end) - int(start)
    raise TypeError(f"cannot measure an HTTP body of type {type(body).__name__}")


def _response_bytes(response_dict: dict[str, Any]) -> int:
    body = response_dict.get("body")
    if isinstance(body, bytes | bytearray):
        return len(body)
    length = response_dict.get("headers", {}).get("Content-Length")
    if length is None:
        raise TypeError(f"cannot measure a streamed response body ({type(body).__name__})")
    return int(length)


def error_code(status: int, parsed: dict[str, Any] | None) -> str | None:
    """The call's outcome as SPEC 2.2 records it: None for a success, else the Data API's
    error code (``BadRequestException``), else the HTTP status (``"503"``)."""
    code = (parsed or {}).get("Error", {}).get("Code")
    if code:
        return str(code)
    return str(status) if status >= 300 else None


def _request_id(response_dict: dict[str, Any], parsed: dict[str, Any] | None) -> str | None:
    metadata = (parsed or {}).get("ResponseMetadata", {})
    request_id = metadata.get("RequestId")
    if not request_id:
        headers = {k.lower(): v for k, v in response_dict.get("headers", {}).items()}
        request_id = headers.get("x-amzn-requestid") or headers.get("x-amz-request-id")
    return str(request_id) if request_id else None


@dataclass(slots=True)
class _Sent:
    operation: str
    ts: datetime
    request_bytes: int


class Wiretap:
    """Measures a botocore client's calls made while a tenant is set in the calling thread.

    ``on_exchange`` gets each measured attempt; ``on_unmeasured`` gets (operation, reason)
    for an attempt that cannot be recorded (no answer, or an answer without a request id).
    Calls made on the client outside ``scope`` are left alone.
    """

    def __init__(
        self,
        client: Any,
        on_exchange: Callable[[Exchange], None],
        on_unmeasured: Callable[[str, str], None],
    ) -> None:
        self._events = client.meta.events
        self._service = client.meta.service_model.service_id.hyphenize()
        self._on_exchange = on_exchange
        self._on_unmeasured = on_unmeasured
        self._local = threading.local()
        self._unique = f"metering.hook.{id(self)}"
        self._attached = False

    def attach(self) -> None:
        """Register the handlers on the client's event system."""
        if self._attached:
            return
        self._events.register(
            f"before-send.{self._service}", self._before_send, unique_id=f"{self._unique}.send"
        )
        self._events.register(
            f"response-received.{self._service}",
            self._response_received,
            unique_id=f"{self._unique}.received",
        )
        self._attached = True

    def detach(self) -> None:
        """Unregister the handlers; the client is as it was before ``attach``."""
        if not self._attached:
            return
        self._events.unregister(f"before-send.{self._service}", unique_id=f"{self._unique}.send")
        self._events.unregister(
            f"response-received.{self._service}", unique_id=f"{self._unique}.received"
        )
        self._attached = False

    @contextmanager
    def scope(self, tenant_id: str) -> Iterator[None]:
        """Attribute every call this thread makes inside the block to ``tenant_id``."""
        previous = getattr(self._local, "tenant", None)
        self._local.tenant = tenant_id
        try:
            yield
        finally:
            self._local.tenant = previous
            self._local.sent = None

    def _before_send(self, request: Any, event_name: str = "", **_: Any) -> None:
        try:
            if getattr(self._local, "tenant", None) is None:
                return
            self._local.sent = _Sent(
                operation=event_name.rsplit(".", 1)[-1],
                ts=datetime.now(UTC),
                request_bytes=body_length(request.body),
            )
        except Exception:  # a handler must never break the caller's call
            log.exception("metering: cannot measure the request of %s", event_name)
            self._local.sent = None

    def _response_received(
        self,
        response_dict: dict[str, Any] | None = None,
        parsed_response: dict[str, Any] | None = None,
        exception: BaseException | None = None,
        event_name: str = "",
        **_: Any,
    ) -> None:
        tenant = getattr(self._local, "tenant", None)
        sent: _Sent | None = getattr(self._local, "sent", None)
        self._local.sent = None
        operation = event_name.rsplit(".", 1)[-1]
        if tenant is None:
            return
        try:
            if sent is None:
                self._on_unmeasured(operation, "the request was not measured")
                return
            if response_dict is None:
                reason = f"no response ({type(exception).__name__})" if exception else "no response"
                self._on_unmeasured(operation, reason)
                return
            request_id = _request_id(response_dict, parsed_response)
            status = int(response_dict.get("status_code", 0) or 0)
            if request_id is None:
                self._on_unmeasured(operation, f"HTTP {status} response without a RequestId")
                return
            self._on_exchange(
                Exchange(
                    tenant_id=tenant,
                    operation=sent.operation or operation,
                    ts=sent.ts,
                    request_bytes=sent.request_bytes,
                    response_bytes=_response_bytes(response_dict),
                    request_id=request_id,
                    status=status,
                    error_code=error_code(status, parsed_response),
                )
            )
        except Exception:  # a handler must never break the caller's call
            log.exception("metering: cannot measure the response of %s", event_name)
            try:
                self._on_unmeasured(operation, "measuring failed")
            except Exception:
                log.exception("metering: cannot count an unmeasured call")
