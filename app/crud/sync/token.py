"""Sync tokens: where a client stands in one resource's change feed, signed like cursors.

A token holds the resource, the position after which the feed continues (a change stamp and a
row id), the floor the next `since` will start from once the pages of this round are read,
whether the round is the initial full read, and when its snapshot was taken (for retention).
"""

import time
from dataclasses import dataclass

from app.core.errors import ProblemError, Unprocessable
from app.crud.signed import InvalidToken, seal, unseal

PURPOSE = "sync"
BEFORE_ANY_STAMP = -1  # stamps are 0 (rows from before sync) or more
AFTER_ANY_ID = 2**63 - 1


class SyncExpired(ProblemError, status=410, slug="sync-expired"):
    """The token is older than SYNC_RETENTION_DAYS: start over without `since`."""


@dataclass(frozen=True)
class SyncToken:
    resource: str
    stamp: int  # the feed continues after (stamp, row_id)
    row_id: int
    floor: int | None  # None: the round's first page is next (it sets the floor)
    initial: bool  # the first full read: visible rows only, no tombstones
    taken_at: int  # unix seconds of the snapshot the round started from

    @classmethod
    def start(cls, resource: str) -> "SyncToken":
        """No `since`: the first full read."""
        return cls(resource, BEFORE_ANY_STAMP, AFTER_ANY_ID, None, True, int(time.time()))

    @classmethod
    def since(cls, resource: str, floor: int, taken_at: int) -> "SyncToken":
        """The next round: every change stamped `floor` or later."""
        return cls(resource, floor - 1, AFTER_ANY_ID, None, False, taken_at)

    def encode(self, secret: str) -> str:
        fields = [self.stamp, self.row_id, self.floor, self.initial, self.taken_at]
        return seal([self.resource, *fields], secret, PURPOSE)


def invalid_token(message: str, parameter: str) -> Unprocessable:
    return Unprocessable(
        message,
        slug="invalid-sync-token",
        errors=[{"loc": parameter.split("."), "msg": message, "type": "sync_token"}],
    )


def decode_token(
    text: str, resource: str, secret: str, retention_days: int, parameter: str = "query.since"
) -> SyncToken:
    """The token a client sent: 422 unless this server made it for `resource`, 410 when it is
    older than the retention (the tombstones it needs may be gone)."""
    try:
        made_for, stamp, row_id, floor, initial, taken_at = unseal(text, secret, PURPOSE)
        token = SyncToken(made_for, int(stamp), int(row_id), floor, bool(initial), int(taken_at))
    except (InvalidToken, TypeError, ValueError):
        raise invalid_token("the sync token is not valid", parameter) from None
    if token.resource != resource:
        raise invalid_token(
            f"the sync token was made for {token.resource}, not {resource}", parameter
        )
    if token.taken_at < time.time() - retention_days * 86_400:
        raise SyncExpired(
            f"the sync token is older than {retention_days} days (SYNC_RETENTION_DAYS): "
            "read the feed again without `since`"
        )
    return token
