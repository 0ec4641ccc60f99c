"""Keys for PostgreSQL advisory locks, derived from text."""

import hashlib


def advisory_lock_key(text: str) -> int:
    """A signed 64-bit key for `pg_advisory_xact_lock` (collisions only over-serialise)."""
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)
