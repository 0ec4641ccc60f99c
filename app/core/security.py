"""Password hashing (bcrypt) and tokens (JWT access tokens, opaque refresh tokens)."""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

import bcrypt
import jwt
from starlette.concurrency import run_in_threadpool

from app.core.db import utcnow

ALGORITHM = "HS256"
ACCESS_TOKEN_TYPE = "access"
# A short-lived token that only opens event streams: browsers' EventSource cannot send an
# Authorization header, so it travels in the URL, where an access token should not.
STREAM_TICKET_TYPE = "stream"
BCRYPT_MAX_BYTES = 72
DEFAULT_ROUNDS = 12  # Settings.BCRYPT_ROUNDS's default
MAX_TOKEN_VERSION = 2**31  # users.token_version is an INTEGER


def password_fits_bcrypt(password: str) -> bool:
    return len(password.encode()) <= BCRYPT_MAX_BYTES


async def hash_password(password: str, rounds: int) -> str:
    salt = bcrypt.gensalt(rounds)
    hashed = await run_in_threadpool(bcrypt.hashpw, password.encode(), salt)
    return hashed.decode()


@lru_cache
def _dummy_hash(rounds: int) -> bytes:
    return bcrypt.hashpw(b"timing-equaliser", bcrypt.gensalt(rounds))


async def verify_password(
    password: str, hashed: str | None, *, rounds: int = DEFAULT_ROUNDS
) -> bool:
    """Check a password without revealing, by timing, whether the account exists.

    With no hash (an unknown email) a dummy hash of the app's cost, `rounds`, is checked, so
    the answer takes as long as for a real account. Over-long passwords never match (bcrypt 5
    refuses them); they still spend a check.
    """
    candidate = password.encode()
    fits = password_fits_bcrypt(password)
    if not fits:
        candidate = candidate[:BCRYPT_MAX_BYTES]
    target = hashed.encode() if hashed else await run_in_threadpool(_dummy_hash, rounds)
    matches = await run_in_threadpool(bcrypt.checkpw, candidate, target)
    return matches and fits and hashed is not None


@dataclass(frozen=True)
class AccessClaims:
    """What a valid access token says: whose it is, and which of their token versions."""

    user_id: int
    version: int


def create_access_token(
    user_id: int,
    secret: str,
    expires: timedelta,
    *,
    version: int = 0,
    kind: str = ACCESS_TOKEN_TYPE,
) -> str:
    """`version` is the user's `token_version` (a new account's is 0); bumping it ends the token.
    `kind` STREAM_TICKET_TYPE makes a stream ticket instead."""
    now = utcnow()
    claims = {"sub": str(user_id), "ver": version, "iat": now, "exp": now + expires, "type": kind}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def decode_access_token(
    token: str, secret: str, kind: str = ACCESS_TOKEN_TYPE
) -> AccessClaims | None:
    """The claims of a valid access token (or of a token of another `kind`), else None.

    No leeway: a token whose `iat` or `nbf` lies in the future, or whose `exp` has passed, is
    refused to the second (JWT times are whole seconds; this app writes `iat` rounded down).
    """
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            leeway=0,
            options={
                "require": ["sub", "ver", "exp", "iat", "type"],
                "verify_iat": True,
                "verify_nbf": True,
                "verify_exp": True,
            },
        )
    except jwt.PyJWTError:
        return None
    if claims["type"] != kind:
        return None
    subject, version = claims["sub"], claims["ver"]
    if not isinstance(subject, str) or not (subject.isascii() and subject.isdigit()):
        return None
    if type(version) is not int or not 0 <= version < MAX_TOKEN_VERSION:  # no bool, float, text
        return None
    return AccessClaims(user_id=int(subject), version=version)


def new_refresh_token() -> str:
    return secrets.token_urlsafe(32)


def new_token_family() -> str:
    """A login's refresh-token family: every token rotated from it carries this id."""
    return secrets.token_hex(16)


def refresh_token_digest(token: str) -> str:
    """Refresh tokens are stored only as digests; they are high-entropy, so SHA-256 suffices."""
    return hashlib.sha256(token.encode()).hexdigest()


def refresh_token_expiry(days: int, family_ends: datetime) -> datetime:
    """A refresh token's own end: `days` from now, never past its family's end."""
    return min(utcnow() + timedelta(days=days), family_ends)
