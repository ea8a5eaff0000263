"""What meter reads of a CloudTrail record, whatever file it came in, and where it was.

The msgspec structs declare only the fields meter needs, so a typed decode skips the rest
unread. JSON bodies (``trailbody``) decode straight into them; query-result CSVs
(``trailcsv``) build them from a row's cells, so both give the same records and the same
EVENTS rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import msgspec

from metering.schemas import QuarantineEntry

DATA_API_SOURCES = frozenset({"rdsdataapi.amazonaws.com", "rdsdata.amazonaws.com"})
# The ``resources`` entry that names the cluster a Data API call went to.
CLUSTER_TYPE = "AWS::RDS::DBCluster"

# Field names are CloudTrail's own (camelCase), so msgspec matches them without renaming.
# gc=False: decoded JSON holds no reference cycles, and untracked structs halve the decode
# time of a large file (the collector makes millions of them).


class Issuer(msgspec.Struct, gc=False):
    arn: str | None = None


class SessionContext(msgspec.Struct, gc=False):
    sessionIssuer: Issuer | None = None
    sourceIdentity: str | None = None


class UserIdentity(msgspec.Struct, gc=False):
    arn: str | None = None
    sessionContext: SessionContext | None = None


class Parameters(msgspec.Struct, gc=False):
    secretArn: str | None = None
    resourceArn: str | None = None


class Resource(msgspec.Struct, gc=False):
    """An entry of ``resources`` (its ``accountId`` is not needed: skipped unread)."""

    ARN: str | None = None
    type: str | None = None


class Record(msgspec.Struct, gc=False):
    """The fields of a CloudTrail record meter reads; every other field is skipped unread.

    ``Records`` is there so that a JSON Lines file whose lines are whole delivery bodies
    (``zcat *.json.gz > all.jsonl``) is read, not mistaken for records without a source.
    """

    eventSource: str | None = None
    eventName: str | None = None
    eventID: str | None = None
    eventTime: str | None = None
    errorCode: str | None = None
    requestID: str | None = None
    userIdentity: UserIdentity | None = None
    requestParameters: Parameters | None = None
    resources: list[Resource] | None = None
    sourceIdentity: str | None = None
    Records: list[Record] | None = None

    def is_record(self) -> bool:
        return (
            self.eventSource is not None or self.eventID is not None or self.eventTime is not None
        )

    def cluster_arn(self) -> str | None:
        """The cluster the call went to: ``requestParameters.resourceArn``, else the
        ``resources`` entry of type ``AWS::RDS::DBCluster`` (CloudTrail drops
        ``requestParameters`` past 100 KB, a big batch say, but keeps ``resources``)."""
        params = self.requestParameters
        if params is not None and params.resourceArn:
            return params.resourceArn
        for resource in self.resources or ():
            if resource.type == CLUSTER_TYPE and resource.ARN:
                return resource.ARN
        return params.resourceArn if params is not None else None


Item = Record | str | None  # a record; why it is quarantined; or None: not ours, skipped


@dataclass(slots=True)
class Decoded:
    """Some records of a file, where each came from, and what could not be read."""

    records: Sequence[Item]
    where: Sequence[str] | None = None  # locators, or None for "record 1", "record 2", ...
    problems: list[QuarantineEntry] = field(default_factory=list)
    typed: bool = False  # every record is a ``Record`` (a typed decode): none to quarantine

    def locator(self, index: int) -> str:
        return self.where[index] if self.where is not None else f"record {index + 1}"
