"""The producer side: an RDS Data API wrapper that sets the tenant safely and meters calls.

```python
from metering.hook import MeteredDataApi

api = MeteredDataApi(boto3.client("rds-data"), table="DataApiMetering",
                     resource_arn=CLUSTER_ARN, secret_arn=SECRET_ARN, database="app")
with api.tenant("42") as t:            # one Data API transaction
    t.execute("SELECT tenant_name FROM tenant")
api.close()                            # or `with MeteredDataApi(...) as api:`
```

- The tenant is set inside the transaction with a bound parameter,
  ``SELECT set_config('app.tenant_id', :tenant_id, true)``, for the row-level security
  policies of ``metering.rls``; the block commits, or rolls back and re-raises.
- Every Data API call the wrapper makes (Begin/Commit/Rollback, statements, batches,
  errors, retried attempts) is measured on the wire through botocore events: request body
  bytes, response body bytes and the RequestId AWS also writes to CloudTrail. Each becomes
  one item of SPEC 2.2 in the DynamoDB table.
- Items are buffered and written with ``batch_write_item`` in chunks of 25 (after a block
  once 25 are waiting, or once the oldest waited ``max_age`` seconds, and on ``flush()``,
  ``close()`` and normal interpreter exit). ``UnprocessedItems`` and throttling are retried
  with exponential backoff. What still cannot be written is appended to ``spill_path``
  (default ``./meter-spill/data/<table>-<pid>.json``) as DynamoDB export lines; bill it by
  listing the folder above ``data/`` under ``[sources.metering] exports``.
- A metering problem never breaks the caller's query: it is logged (logger
  ``metering.hook``) and counted in ``api.stats``.
"""

from __future__ import annotations

from metering.hook._api import SET_TENANT_SQL, MeteredDataApi, TenantTransaction, sql_parameters
from metering.hook._writer import MeterStats

__all__ = ["SET_TENANT_SQL", "MeterStats", "MeteredDataApi", "TenantTransaction", "sql_parameters"]
