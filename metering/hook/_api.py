"""``MeteredDataApi``: Data API transactions with the tenant set safely, every call metered."""

from __future__ import annotations

import atexit
import json
import logging
import os
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

from metering.errors import UsageError
from metering.hook._wire import Exchange, Wiretap
from metering.hook._writer import MeterStats, Writer
from metering.hook.records import SHARDS, CallRecord

log = logging.getLogger("metering.hook")

# The tenant is a bound parameter, never formatted into SQL; `true` = local to the
# transaction, so it cannot leak into the next transaction on a pooled connection.
SET_TENANT_SQL = "SELECT set_config('app.tenant_id', :tenant_id, true)"

SqlParameters = Mapping[str, object] | Sequence[Mapping[str, Any]]


def _field(name: str, value: object) -> dict[str, Any]:
    """A Data API ``SqlParameter`` for a Python value."""
    if value is None:
        return {"name": name, "value": {"isNull": True}}
    if isinstance(value, bool):
        return {"name": name, "value": {"booleanValue": value}}
    if isinstance(value, int):
        return {"name": name, "value": {"longValue": value}}
    if isinstance(value, float):
        return {"name": name, "value": {"doubleValue": value}}
    if isinstance(value, str):
        return {"name": name, "value": {"stringValue": value}}
    if isinstance(value, bytes | bytearray):
        return {"name": name, "value": {"blobValue": bytes(value)}}
    if isinstance(value, Decimal):
        return {"name": name, "value": {"stringValue": str(value)}, "typeHint": "DECIMAL"}
    if isinstance(value, uuid.UUID):
        return {"name": name, "value": {"stringValue": str(value)}, "typeHint": "UUID"}
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        text = value.strftime("%Y-%m-%d %H:%M:%S.%f")
        return {"name": name, "value": {"stringValue": text}, "typeHint": "TIMESTAMP"}
    if isinstance(value, date):
        return {"name": name, "value": {"stringValue": value.isoformat()}, "typeHint": "DATE"}
    if isinstance(value, time):
        text = value.strftime("%H:%M:%S.%f")
        return {"name": name, "value": {"stringValue": text}, "typeHint": "TIME"}
    raise UsageError(
        f"SQL parameter {name!r}: cannot send a {type(value).__name__} through the Data API; "
        "pass a str, int, float, bool, bytes, Decimal, UUID, date/time or None, "
        "or a Data API SqlParameter dict"
    )


def sql_parameters(parameters: SqlParameters | None) -> list[dict[str, Any]]:
    """Data API ``parameters``: a mapping of plain values, or SqlParameter dicts as they are."""
    if parameters is None:
        return []
    if isinstance(parameters, Mapping):
        return [_field(str(name), value) for name, value in parameters.items()]
    if isinstance(parameters, str | bytes) or not all(isinstance(p, Mapping) for p in parameters):
        raise UsageError(
            f"parameters {parameters!r}: give a mapping like {{'id': 7}} "
            "or a list of Data API SqlParameter dicts"
        )
    return [dict(parameter) for parameter in parameters]


def _tenant_text(tenant_id: object) -> str:
    if isinstance(tenant_id, bool) or not isinstance(tenant_id, str | int):
        raise UsageError(f"tenant id {tenant_id!r}: give a str (or an int), e.g. api.tenant('42')")
    text = str(tenant_id)
    if not text.strip():
        raise UsageError("tenant id is empty: every metered call needs the tenant it serves")
    return text


def _default_spill(table: str) -> Path:
    return Path.cwd() / "meter-spill" / "data" / f"{table}-{os.getpid()}.json"


def _check_spill(path: Path) -> Path:
    if path.suffix != ".json" or path.parent.name != "data":
        raise UsageError(
            f"spill_path {str(path)!r}: give a file named like FOLDER/data/NAME.json, so that "
            "meter can read FOLDER as a DynamoDB export ([sources.metering] exports)"
        )
    return path


class TenantTransaction:
    """One Data API transaction with ``app.tenant_id`` set; made by ``MeteredDataApi.tenant``."""

    def __init__(self, api: MeteredDataApi, tenant_id: str, transaction_id: str) -> None:
        self._api = api
        self.tenant_id = tenant_id
        self.transaction_id = transaction_id
        self._open = True

    def _check_open(self) -> None:
        if not self._open:
            raise UsageError(
                f"transaction {self.transaction_id} of tenant {self.tenant_id} is finished; "
                "run statements inside the `with api.tenant(...)` block"
            )

    def execute(
        self, sql: str, parameters: SqlParameters | None = None, **options: Any
    ) -> dict[str, Any]:
        """``ExecuteStatement`` in this transaction; returns the Data API response.

        ``parameters`` maps ``:name`` placeholders to values (``{"id": 7}``), or is a list
        of Data API ``SqlParameter`` dicts. ``options`` go to the call as they are
        (``includeResultMetadata=True``, ``formatRecordsAs="JSON"``, ...).
        """
        self._check_open()
        call = dict(self._api._target(), sql=sql, transactionId=self.transaction_id, **options)
        if parameters is not None:
            call["parameters"] = sql_parameters(parameters)
        response: dict[str, Any] = self._api.client.execute_statement(**call)
        return response

    def usage(self, month: str | None = None, schema: str = "meter_usage") -> list[dict[str, Any]]:
        """This tenant's usage as ``meter publish`` left it (every month, or ``month``),
        one dict per month: row-level security lets no other tenant's rows through, and
        none at all when no tenant is set. ``amount`` is text (exact decimals)."""
        from metering.publish import usage_sql

        response = self.execute(
            usage_sql(schema, month=month is not None),
            {"month": month} if month is not None else None,
            formatRecordsAs="JSON",
        )
        rows: list[dict[str, Any]] = json.loads(response.get("formattedRecords") or "[]")
        return rows

    def batch_execute(
        self, sql: str, parameter_sets: Sequence[SqlParameters], **options: Any
    ) -> dict[str, Any]:
        """``BatchExecuteStatement`` in this transaction, one parameter set per row."""
        self._check_open()
        call = dict(
            self._api._target(),
            sql=sql,
            transactionId=self.transaction_id,
            parameterSets=[sql_parameters(parameters) for parameters in parameter_sets],
            **options,
        )
        response: dict[str, Any] = self._api.client.batch_execute_statement(**call)
        return response


class MeteredDataApi:
    """An RDS Data API client that sets the tenant safely and meters every call.

    ``with api.tenant("42") as t: t.execute(sql)`` runs in one Data API transaction:
    ``BeginTransaction``, ``SELECT set_config('app.tenant_id', :tenant_id, true)`` with the
    tenant as a bound parameter, your statements, then ``CommitTransaction`` (or
    ``RollbackTransaction`` when the block raises, and the exception goes on).

    Every HTTP exchange of those calls is measured on the wire and becomes one metering
    item (SPEC 2.2) in ``table``, written in batches of 25; see ``metering.hook``.
    Call ``close()`` (or use the object as a context manager) to flush; a process that
    exits normally flushes too.
    """

    def __init__(
        self,
        client: Any,
        *,
        table: str,
        resource_arn: str,
        secret_arn: str,
        database: str | None = None,
        schema: str | None = None,
        dynamodb_client: Any | None = None,
        spill_path: str | os.PathLike[str] | None = None,
        shards: int = SHARDS,
        principal_arn: str | None = None,
        max_attempts: int = 6,
        backoff_base: float = 0.05,
        max_age: float = 5.0,
    ) -> None:
        service = getattr(getattr(client, "meta", None), "service_model", None)
        if getattr(service, "service_name", None) != "rds-data":
            raise UsageError("MeteredDataApi needs a boto3 'rds-data' client")
        if not table:
            raise UsageError("table: name the DynamoDB metering table, e.g. 'DataApiMetering'")
        if not 1 <= shards <= SHARDS:
            raise UsageError(f"shards = {shards}: give 1 to {SHARDS} (SPEC 2.2 shards 00-15)")
        if max_attempts < 1:
            raise UsageError(f"max_attempts = {max_attempts}: give at least 1")
        self.client = client
        self.table = table
        self.resource_arn = resource_arn
        self.secret_arn = secret_arn
        self.database = database
        self.schema = schema
        self.shards = shards
        self.principal_arn = principal_arn
        if dynamodb_client is None:
            import boto3  # only when the caller did not bring a client

            dynamodb_client = boto3.client("dynamodb", region_name=client.meta.region_name)
        path = _default_spill(table) if spill_path is None else Path(spill_path)
        self._writer = Writer(
            dynamodb_client,
            table,
            _check_spill(path),
            max_attempts=max_attempts,
            backoff_base=backoff_base,
            max_age=max_age,
        )
        self._wiretap = Wiretap(client, self._record, self._unmeasured)
        self._wiretap.attach()
        self._closed = False
        atexit.register(self.close)

    # -- measuring ------------------------------------------------------------------------

    def _record(self, exchange: Exchange) -> None:
        record = CallRecord(
            tenant_id=exchange.tenant_id,
            request_id=exchange.request_id,
            ts=exchange.ts,
            operation=exchange.operation,
            request_bytes=exchange.request_bytes,
            response_bytes=exchange.response_bytes,
            resource_arn=self.resource_arn,
            principal_arn=self.principal_arn,
            error_code=exchange.error_code,
        )
        self._writer.add(record.item(self.shards))

    def _unmeasured(self, operation: str, reason: str) -> None:
        self._writer.count("calls_unmeasured")
        log.warning("metering: a %s call was not recorded: %s", operation, reason)

    # -- transactions ---------------------------------------------------------------------

    def _target(self) -> dict[str, str]:
        target = {"resourceArn": self.resource_arn, "secretArn": self.secret_arn}
        if self.database is not None:
            target["database"] = self.database
        if self.schema is not None:
            target["schema"] = self.schema
        return target

    @contextmanager
    def tenant(self, tenant_id: str | int) -> Iterator[TenantTransaction]:
        """One Data API transaction on behalf of ``tenant_id`` (see the class docstring)."""
        if self._closed:
            raise UsageError("this MeteredDataApi is closed; make a new one")
        tenant = _tenant_text(tenant_id)
        arns = {"resourceArn": self.resource_arn, "secretArn": self.secret_arn}
        try:
            with self._wiretap.scope(tenant):
                begun = self.client.begin_transaction(**self._target())
                transaction = TenantTransaction(self, tenant, begun["transactionId"])
                try:
                    transaction.execute(SET_TENANT_SQL, {"tenant_id": tenant})
                    yield transaction
                except BaseException:
                    transaction._open = False
                    try:
                        self.client.rollback_transaction(
                            **arns, transactionId=transaction.transaction_id
                        )
                    except Exception:  # the caller's exception matters more
                        log.exception(
                            "rolling back transaction %s of tenant %s failed",
                            transaction.transaction_id,
                            tenant,
                        )
                    raise
                transaction._open = False
                self.client.commit_transaction(**arns, transactionId=transaction.transaction_id)
        finally:
            self._writer.maybe_flush()

    # -- metering output ------------------------------------------------------------------

    @property
    def stats(self) -> MeterStats:
        """Counters: calls metered, records written, spilled, lost, retries, errors."""
        return self._writer.stats()

    @property
    def spill_path(self) -> Path:
        """Where records that cannot be written go (created on first use)."""
        return self._writer.spill_path

    def flush(self) -> None:
        """Write every buffered record now (spilling what cannot be written)."""
        self._writer.flush()

    def close(self) -> None:
        """Flush and stop metering the client. Safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        self._wiretap.detach()
        self._writer.flush()
        atexit.unregister(self.close)

    def __enter__(self) -> MeteredDataApi:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
