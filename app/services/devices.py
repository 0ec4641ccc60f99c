"""Known devices: a signed token that each successful login leaves with its client.

Without it, five wrong passwords a minute against an email keep its owner locked out for as
long as the attacker likes. A login that presents a valid device token of the very account it
names is not held by that account's failure counter; its failures count against the device
instead (app/services/throttle.py). Everyone else, the attacker included, still meets the
account's limit, and every client its address's.

A token reads `<user id>.<token version>.<expiry>.<device id>.<signature>`: the expiry in Unix
seconds (DEVICE_TOKEN_EXPIRE_DAYS), the signature an HMAC-SHA256 with SECRET_KEY under a
purpose of its own, so no other value the app signs (access tokens, cursors) passes for one.
It carries the account's token_version: a password change or a logout-all ends every device
token of the account, until the next successful login issues a new one. Signed, not
encrypted: it shows its holder their own user id.
"""

import hashlib
import hmac
import secrets
import time

from app.core.config import Settings
from app.models.user import User

PURPOSE = b"device-token\x00"
MAX_LENGTH = 200  # a real token is under 110 characters


def sign_device_token(user_id: int, version: int, expires: int, device: str, secret: str) -> str:
    payload = f"{user_id}.{version}.{expires}.{device}"
    return f"{payload}.{_signature(payload, secret)}"


def _signature(payload: str, secret: str) -> str:
    return hmac.new(secret.encode(), PURPOSE + payload.encode(), hashlib.sha256).hexdigest()


def issue_device_token(user: User, settings: Settings) -> str:
    assert user.id is not None
    expires = int(time.time()) + settings.DEVICE_TOKEN_EXPIRE_DAYS * 86_400
    device = secrets.token_hex(8)
    return sign_device_token(user.id, user.token_version, expires, device, settings.SECRET_KEY)


def known_device(user: User | None, secret: str, *tokens: str | None) -> str | None:
    """The device id of the first token valid for `user` now; None for an unknown client."""
    if user is None:
        return None
    for token in tokens:
        if token and (device := _device(token, user, secret)) is not None:
            return device
    return None


def _device(token: str, user: User, secret: str) -> str | None:
    if len(token) > MAX_LENGTH:
        return None
    payload, _, signature = token.rpartition(".")
    if not hmac.compare_digest(signature.encode(), _signature(payload, secret).encode()):
        return None
    user_id, version, expires, device = payload.split(".")
    if user_id != str(user.id) or version != str(user.token_version):
        return None  # another account's, or stale since a password change or logout-all
    if int(expires) <= time.time():
        return None
    return device
