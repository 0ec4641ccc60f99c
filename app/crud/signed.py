"""Opaque, signed tokens the API hands out and takes back (list cursors, sync tokens).

A token is its JSON payload plus a truncated HMAC of it under SECRET_KEY and the token's
purpose, base64url-encoded: clients cannot forge one, nor pass one kind off as another.
"""

import base64
import hashlib
import hmac
import json
from typing import Any

SIGNATURE_BYTES = 12


class InvalidToken(ValueError):
    pass


def _sign(payload: bytes, secret: str, purpose: str) -> bytes:
    key = f"{purpose}:{secret}".encode()
    return hmac.new(key, payload, hashlib.sha256).digest()[:SIGNATURE_BYTES]


def seal(value: Any, secret: str, purpose: str) -> str:
    """`value` (JSON-serialisable) as a token."""
    payload = json.dumps(value, default=str, separators=(",", ":")).encode()
    token = payload + _sign(payload, secret, purpose)
    return base64.urlsafe_b64encode(token).decode().rstrip("=")


def unseal(token: str, secret: str, purpose: str) -> Any:
    """The value a token carries; InvalidToken if this server did not seal it for `purpose`."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except ValueError as error:
        raise InvalidToken("the token is not valid") from error
    payload, signature = raw[:-SIGNATURE_BYTES], raw[-SIGNATURE_BYTES:]
    if len(raw) <= SIGNATURE_BYTES or not hmac.compare_digest(
        signature, _sign(payload, secret, purpose)
    ):
        raise InvalidToken("the token is not valid")
    return json.loads(payload)
