"""Fixtures for the metering hook and RLS tests.

- ``tap``: a small HTTP server between boto3 and the moto server that records every
  exchange as it passes on the wire (request body bytes read from the socket, response
  body bytes written to it, the ``x-amzn-RequestId`` header). It forwards everything to
  moto, except what moto's rds-data lacks: moto implements only ExecuteStatement, so
  the tap answers BeginTransaction, CommitTransaction, RollbackTransaction and
  BatchExecuteStatement itself, in the Data API's wire format with fresh request ids. It
  can also inject faults: a failing statement (SQL containing ``FAIL``), a 503 on the next
  Data API calls, ``UnprocessedItems`` or throttling errors on DynamoDB BatchWriteItem
  (moto never returns ``UnprocessedItems``).
- ``postgres``: a real throwaway PostgreSQL cluster, from ``tests.hook.pgcluster``.
"""

from __future__ import annotations

import functools
import http.client
import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.helpers import create_metering_table
from tests.hook.pgcluster import NO_SERVER, PgCluster, find_install, pg_cluster

REGION = "us-east-1"
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
DATA_API_PATHS = {
    "/Execute": "ExecuteStatement",
    "/BatchExecute": "BatchExecuteStatement",
    "/BeginTransaction": "BeginTransaction",
    "/CommitTransaction": "CommitTransaction",
    "/RollbackTransaction": "RollbackTransaction",
}
HOP_BY_HOP = {"connection", "content-length", "transfer-encoding", "server", "date", "keep-alive"}


@dataclass(frozen=True)
class Seen:
    """One exchange as the tap saw it on the wire."""

    service: str  # "rds-data" or "dynamodb"
    operation: str
    request_bytes: int
    response_bytes: int
    request_id: str | None
    status: int
    request: dict[str, Any]
    response: dict[str, Any]
    error_type: str | None = None  # the x-amzn-ErrorType header of an error answer


@dataclass
class Faults:
    """Faults to inject; the tap counts them down."""

    data_api_unavailable: int = 0  # next N Data API requests answer 503
    unprocessed_rounds: int = 0  # next N BatchWriteItem keep half, hand back the rest
    dynamodb_error: str | None = None  # every BatchWriteItem fails with this error code


@dataclass
class TapState:
    seen: list[Seen] = field(default_factory=list)
    transactions: dict[str, str] = field(default_factory=dict)  # id -> open/committed/...
    faults: Faults = field(default_factory=Faults)


class Tap(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, upstream: str) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.lock = threading.Lock()
        self.state = TapState()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def reset(self) -> None:
        with self.lock:
            self.state = TapState()

    def seen(self, service: str | None = None) -> list[Seen]:
        with self.lock:
            return [s for s in self.state.seen if service is None or s.service == service]

    # -- answering ------------------------------------------------------------------------

    def forward(
        self, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        connection = http.client.HTTPConnection(*self.upstream, timeout=30)
        try:
            sent = {k: v for k, v in headers.items() if k.lower() not in HOP_BY_HOP | {"host"}}
            connection.request("POST", path, body=body, headers=sent)
            response = connection.getresponse()
            payload = response.read()
            kept = [(k, v) for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP]
            return response.status, kept, payload
        finally:
            connection.close()

    def answer(
        self, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        target = headers.get("X-Amz-Target", "")
        if target.startswith("DynamoDB_"):
            return self._dynamodb(target.split(".")[-1], path, headers, body)
        if path in DATA_API_PATHS:
            return self._data_api(DATA_API_PATHS[path], path, headers, body)
        return self.forward(path, headers, body)

    @staticmethod
    def _json(
        status: int, document: dict[str, Any], error: str | None = None
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        headers = [("Content-Type", "application/json"), ("x-amzn-RequestId", str(uuid.uuid4()))]
        if error:
            headers.append(("x-amzn-ErrorType", f"{error}:http://internal.amazon.com/coral/"))
        return status, headers, json.dumps(document).encode()

    def _data_api(
        self, operation: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        request = json.loads(body or b"{}")
        state = self.state
        with self.lock:
            if state.faults.data_api_unavailable > 0:
                state.faults.data_api_unavailable -= 1
                return self._json(503, {"message": "try again"}, "ServiceUnavailableError")
            transaction = request.get("transactionId")
            if transaction is not None and state.transactions.get(transaction) != "open":
                return self._json(
                    400, {"message": f"transaction {transaction} is not open"}, "NotFoundException"
                )
            if operation == "BeginTransaction":
                transaction = uuid.uuid4().hex
                state.transactions[transaction] = "open"
                return self._json(200, {"transactionId": transaction})
            if operation == "CommitTransaction":
                state.transactions[transaction] = "committed"
                return self._json(200, {"transactionStatus": "Transaction Committed"})
            if operation == "RollbackTransaction":
                state.transactions[transaction] = "rolled back"
                return self._json(200, {"transactionStatus": "Rollback Complete"})
            if operation == "BatchExecuteStatement":
                results = [{"generatedFields": []} for _ in request.get("parameterSets", [])]
                return self._json(200, {"updateResults": results})
            if "FAIL" in request.get("sql", ""):
                return self._json(
                    400, {"message": "ERROR: relation does not exist"}, "BadRequestException"
                )
        return self.forward(path, headers, body)

    def _dynamodb(
        self, operation: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        if operation != "BatchWriteItem":
            return self.forward(path, headers, body)
        faults = self.state.faults
        with self.lock:
            error = faults.dynamodb_error
            unprocess = faults.unprocessed_rounds > 0
            if unprocess:
                faults.unprocessed_rounds -= 1
        if error:
            document = {
                "__type": f"com.amazonaws.dynamodb.v20120810#{error}",
                "message": "injected",
            }
            return self._json(400, document)
        if not unprocess:
            return self.forward(path, headers, body)
        request = json.loads(body)
        ((table, requests),) = request["RequestItems"].items()
        keep, back = requests[: len(requests) // 2], requests[len(requests) // 2 :]
        status, kept_headers, payload = 200, [("Content-Type", "application/x-amz-json-1.0")], b"{}"
        if keep:
            reduced = json.dumps({"RequestItems": {table: keep}}).encode()
            status, kept_headers, payload = self.forward(path, headers, reduced)
            kept_headers = [(k, v) for k, v in kept_headers if k.lower() != "x-amz-crc32"]
        document = json.loads(payload)
        document["UnprocessedItems"] = {table: back}
        return status, kept_headers, json.dumps(document).encode()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as boto3 uses it
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed ACK
    server: Tap

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        headers = dict(self.headers.items())
        status, response_headers, payload = self.server.answer(self.path, headers, body)
        self._note(headers, body, status, response_headers, payload)  # before the client can see it
        self.send_response(status)
        for name, value in response_headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _note(
        self,
        headers: dict[str, str],
        body: bytes,
        status: int,
        response_headers: list[tuple[str, str]],
        payload: bytes,
    ) -> None:
        target = headers.get("X-Amz-Target", "")
        service = "dynamodb" if target.startswith("DynamoDB_") else "rds-data"
        operation = target.split(".")[-1] if target else DATA_API_PATHS.get(self.path, self.path)
        request_id = next((v for k, v in response_headers if k.lower() == "x-amzn-requestid"), None)
        error_type = next((v for k, v in response_headers if k.lower() == "x-amzn-errortype"), None)
        try:
            response = json.loads(payload) if payload else {}
        except ValueError:
            response = {}
        seen = Seen(
            service=service,
            operation=operation,
            request_bytes=len(body),
            response_bytes=len(payload),
            request_id=request_id,
            status=status,
            request=json.loads(body) if body else {},
            response=response if isinstance(response, dict) else {},
            error_type=error_type,
        )
        with self.server.lock:
            self.server.state.seen.append(seen)


@pytest.fixture(scope="session")
def tap_server(moto_server: str) -> Iterator[Tap]:
    server = Tap(moto_server)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def tap(tap_server: Tap) -> Tap:
    """The wire tap, with no exchanges seen and no faults set."""
    tap_server.reset()
    return tap_server


@functools.cache
def _session() -> Any:
    import boto3

    return boto3.session.Session()  # loads the service models once for every test


def make_client(service: str, endpoint: str, **config: Any) -> Any:
    from botocore.config import Config

    return _session().client(
        service,
        region_name=REGION,
        endpoint_url=endpoint,
        config=Config(**config) if config else None,
        **CREDENTIALS,
    )


@pytest.fixture
def rds_data(tap: Tap) -> Iterator[Any]:
    """An rds-data client talking HTTP to the tap (and through it to moto)."""
    client = make_client("rds-data", tap.url, retries={"mode": "standard", "max_attempts": 3})
    yield client
    client.close()


@pytest.fixture
def dynamodb(tap: Tap) -> Iterator[Any]:
    """A DynamoDB client through the tap; botocore's own retries off, so the hook's show."""
    client = make_client("dynamodb", tap.url, retries={"mode": "standard", "total_max_attempts": 1})
    yield client
    client.close()


@pytest.fixture
def table(moto_server: str) -> Iterator[str]:
    """A fresh metering table (pk, sk) in moto; yields its name."""
    client = make_client("dynamodb", moto_server)
    name = f"DataApiMetering-{uuid.uuid4().hex[:8]}"
    create_metering_table(client, name)
    yield name
    client.delete_table(TableName=name)
    client.close()


@pytest.fixture
def scan(moto_server: str) -> Iterator[Any]:
    """scan(table) -> every item of the table, straight from moto (not through the tap)."""
    client = make_client("dynamodb", moto_server)

    def everything(name: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for page in client.get_paginator("scan").paginate(TableName=name):
            items.extend(page["Items"])
        return items

    yield everything
    client.close()


# -- PostgreSQL ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres() -> Iterator[PgCluster]:
    """A throwaway PostgreSQL cluster on 127.0.0.1 and a free port (trust auth)."""
    install = find_install()
    if install is None:
        pytest.skip(NO_SERVER)
    pytest.importorskip(
        "psycopg", reason="psycopg 3 is not installed (pip install 'psycopg[binary]')"
    )
    with pg_cluster(install) as cluster:
        yield cluster


@pytest.fixture
def pg_db(postgres: PgCluster) -> Iterator[str]:
    """A fresh database, and the roles ``app`` (login, no superuser, no BYPASSRLS) and
    ``admin``; yields the database name. Tables made by the test belong to whoever made them.
    """
    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres.dsn(), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        for role in ("app", "intruder"):
            exists = admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
            if not exists:
                admin.execute(f'CREATE ROLE "{role}" LOGIN NOSUPERUSER NOBYPASSRLS')
    yield name
    with psycopg.connect(postgres.dsn(), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
