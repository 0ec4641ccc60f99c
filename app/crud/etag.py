"""Strong ETags: the record's own version, plus a digest per expanded relation.

A tag is the row's `version` plus, per expansion, a digest of the nested row's shown columns
(`app.core.digest`; 0 when there is none): every change to what a read shows gives a new tag
(so `If-None-Match` never answers 304 for stale nested data), and nothing it does not show (an
owner's password change) does. `If-Match` compares the record's own part, the version, in the
write's own WHERE clause: a write changes the record, not the rows nested into its reads, so
another user renaming themselves does not make an edit of their post stale.
"""

import re

from app.core.errors import BadRequest

MAX_VERSION = 2**31 - 1
MAX_STAMP = 2**60 - 1
_ENTITY_TAG = re.compile(r'^(W/)?"([^"]*)"$')
_OUR_TAG = re.compile(r"^\d{1,20}(\.\d{1,20})*$")  # ours: a version and expansion digests


def format_etag(version: int, stamps: tuple[int | None, ...]) -> str:
    return '"' + ".".join([str(version), *(str(stamp or 0) for stamp in stamps)]) + '"'


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


def parse_if_match(header: str | None) -> list[int] | None:
    """The record versions an `If-Match` accepts; None when absent or `*` (any current row)."""
    if header is None or header.strip() == "*":
        return None
    tags = []
    # A weak tag matches too: ours name a version of the record, not bytes, and a gzipping
    # proxy (nginx) turns every tag it compresses into a weak one.
    for _weak, opaque in _entity_tags(header):
        if not _OUR_TAG.match(opaque):
            continue  # not one of our tags: it can never match
        # Any number of expansion digests (a read's `expand` decides how many); a part out of
        # range was never one of our tags, so it matches nothing.
        version, *stamps = (int(part) for part in opaque.split("."))
        if version <= MAX_VERSION and all(stamp <= MAX_STAMP for stamp in stamps):
            tags.append(version)
    return tags
