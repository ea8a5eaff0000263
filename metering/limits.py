"""Every bound meter puts on what it reads, in one place (README: "Limits and bad input").

Past a bound, the record or file is quarantined with the bound in its reason and the rest
of the run goes on; no input, however large, deep or hostile, makes meter hold more than
about these sizes at once per worker process.
"""

from __future__ import annotations

from typing import Final

KIB: Final = 1024
MIB: Final = 1024 * KIB

# -- bytes ---------------------------------------------------------------------------------
# One record: a line of a DynamoDB export, or one CloudTrail record. AWS's own are far
# smaller (a DynamoDB item is at most 400 KB; CloudTrail drops request parameters past 100
# KB), so a bigger one is hostile or broken: it is skipped unread, never held.
MAX_RECORD_BYTES: Final = 8 * MIB
# One line of CloudTrail JSON Lines, which may be a whole delivery body (`zcat *.json.gz`).
MAX_LINE_BYTES: Final = 64 * MIB
# A CloudTrail file whose text is at most this is decoded in one call (the fast path);
# a bigger one, or a damaged one, record by record. Real 5-minute files of a busy cluster
# reach 100 MiB (a burst of 200 calls per second); one call decodes those in 0.1 s where
# the record-by-record path needs 8 s.
WHOLE_FILE_BYTES: Final = 128 * MIB
# Text handled at once when a file is read piece by piece.
PIECE_BYTES: Final = 16 * MIB
# The header line of a CloudTrail query result (CSV): a longer first line is no header.
MAX_HEADER_BYTES: Final = 1 * MIB
# -- counts --------------------------------------------------------------------------------
# Records (or lines) decoded at once: a piece of text of millions of tiny records is decoded
# in batches of this many, so memory follows bytes, not the number of records.
MAX_RECORDS_AT_ONCE: Final = 65_536
# A file decoded in one call holds at most this many JSON objects (real ones: ~10 per record).
WHOLE_FILE_OBJECTS: Final = 1_048_576
# A file whose typed decode fails is decoded again without types in one call only when it is
# at most this big (Python objects cost ~10x the text); a bigger one record by record.
UNTYPED_FILE_BYTES: Final = 4 * MIB
# Quarantine entries listed per file; the rest are counted (quarantined) and summed up in
# one more entry, so a file of millions of bad lines stays a few rows.
MAX_LISTED_PER_FILE: Final = 1_000

# A gzip stream that has expanded past WHOLE_FILE_BYTES of text and to more than this many
# times the compressed bytes read is a gzip bomb (real logs expand 5 to 30 times).
MAX_EXPANSION: Final = 500
# Request and response bodies of one Data API call (SPEC 2.2).
MAX_REQUEST_BYTES: Final = 4 * MIB
MAX_RESPONSE_BYTES: Final = 16 * MIB

# -- strings meter keeps -------------------------------------------------------------------
# Characters, per value. A longer value is hostile or broken: its record is quarantined.
MAX_CHARS: Final[dict[str, int]] = {
    "tenant_id": 256,
    "request_id": 128,
    "event_id": 128,
    "operation": 64,
    "error_code": 256,
    "resource_arn": 2048,  # AWS ARNs are at most 2,048 characters
    "principal_arn": 2048,
    "user_arn": 2048,
    "issuer_arn": 2048,
    "secret_arn": 2048,
    "source_identity": 2048,
}
# Values that become keys, lines and file cells must be printable: no control characters.
PRINTABLE: Final = ("tenant_id", "request_id", "event_id", "operation")
# How much of a bad value a quarantine reason quotes.
SHOWN_CHARS: Final = 80
