"""Strong ETags that a conditional write can check in its own WHERE clause.

A tag is the row's `version` plus, per embed, the embedded row's `updated_at` (in
microseconds): every change to what a read shows gives a new tag, and the parts can be
compared by SQL, so `If-Match` is checked atomically by the write itself.
"""

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from app.core.errors import BadRequest

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_VERSION = 2**31 - 1
_ENTITY_TAG = re.compile(r'^(W/)?"([^"]*)"$')
_OUR_TAG = re.compile(r"^\d{1,20}(\.\d{1,20})*$")  # ours: a version and µs stamps


@dataclass(frozen=True)
class Tag:
    version: int
    stamps: tuple[datetime | None, ...]

    @property
    def shape(self) -> tuple[bool, ...]:
        """Which stamps are NULL: that changes the SQL that checks the tag."""
        return tuple(stamp is None for stamp in self.stamps)


def stamp_to_int(stamp: datetime | None) -> int:
    if stamp is None:
        return 0
    delta = stamp - EPOCH  # integer arithmetic: exact, and cheaper than timedelta division
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def int_to_stamp(value: int) -> datetime | None:
    return None if value == 0 else EPOCH + timedelta(microseconds=value)


def format_etag(version: int, stamps: tuple[datetime | None, ...]) -> str:
    return '"' + ".".join([str(version), *(str(stamp_to_int(s)) for s in stamps)]) + '"'


def _entity_tags(header: str) -> list[tuple[bool, str]]:
    """`W/"a", "b"` -> [(True, "a"), (False, "b")]; 400 on a malformed list."""
    tags = []
    for item in header.split(","):
        match = _ENTITY_TAG.match(item.strip())
        if match is None:
            raise BadRequest("Malformed entity tag in a conditional header", slug="malformed-etag")
        tags.append((match.group(1) is not None, match.group(2)))
    return tags


def none_match(header: str | None, current: str) -> bool:
    """True when `If-None-Match` names the current tag (weak comparison): answer 304."""
    if header is None:
        return False
    if header.strip() == "*":
        return True
    return any(f'"{opaque}"' == current for _weak, opaque in _entity_tags(header))


def parse_if_match(header: str | None, embeds: int) -> list[Tag] | None:
    """The tags an `If-Match` accepts; None when absent or `*` (any current row)."""
    if header is None or header.strip() == "*":
        return None
    tags = []
    # A weak tag matches too: ours name a version of the record, not bytes, and a gzipping
    # proxy (nginx) turns every tag it compresses into a weak one.
    for _weak, opaque in _entity_tags(header):
        parts = opaque.split(".")
        if not _OUR_TAG.match(opaque) or len(parts) != embeds + 1:
            continue  # not one of our tags: it can never match
        numbers = [int(part) for part in parts]
        try:
            stamps = tuple(int_to_stamp(n) for n in numbers[1:])
        except OverflowError:
            continue
        if numbers[0] <= MAX_VERSION:
            tags.append(Tag(numbers[0], stamps))
    return tags
