"""Principal patterns spelled for Spark (Java regex) so they match what RE2 matches."""

from __future__ import annotations

import pytest

from metering.attribute.principal import java_pattern


@pytest.mark.parametrize(
    ("re2", "java"),
    [
        (
            "assumed-role/tenant-(?P<tenant>[a-z0-9-]+)/",
            "(?d)assumed-role/tenant-(?<tenant>[a-z0-9-]+)/",
        ),
        (r"tenant-(?P<tenant>\w+)$", r"(?d)tenant-(?<tenant>\w+)\z"),
        (r"(?i)tenant-(?P<tenant>[^\s/]+)", r"(?d)(?iu)tenant-(?<tenant>[^\t\n\f\r /]+)"),
        (r"x\s(?P<tenant>\S+)", r"(?d)x[\t\n\f\r ](?<tenant>[^\t\n\f\r ]+)"),
        (r"(?:a|b)[$](?P<tenant>\Q.$\E)", r"(?d)(?:a|b)[$](?<tenant>\Q.$\E)"),
    ],
)
def test_patterns_are_spelled_for_java(re2: str, java: str) -> None:
    assert java_pattern(re2) == java


@pytest.mark.parametrize(
    ("pattern", "why"),
    [
        (r"\btenant-(?P<tenant>\w+)", "escape \\b"),  # Java 17's \b is Unicode's
        (r"tenant-(?P<tenant>\w+)\Z", "escape \\Z"),
        (r"(?m)^tenant-(?P<tenant>\w+)$", "flags"),
        (r"(?U)tenant-(?P<tenant>\w+)", "flags"),
        (r"tenant-(?P<tenant>[[:alnum:]]+)", "inside a character class"),
        (r"tenant-(?P<tenant>[a-z&&[^x]]+)", "inside a character class"),
        (r"tenant-(?P<tenant_id>\w+)", "group name"),
        (r"tenant-(?P<tenant>\w{,3})", "repetition"),
        (r"tenant-(?P<tenant>[]a])", "starts with ]"),
        (r"tenant-(?P<tenant>\v+)", "escape \\v"),
    ],
)
def test_patterns_java_reads_otherwise_are_refused(pattern: str, why: str) -> None:
    with pytest.raises(ValueError, match=None) as caught:
        java_pattern(pattern)
    assert why in str(caught.value)
