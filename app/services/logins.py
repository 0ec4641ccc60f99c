"""Checking a login: the one path for the API's `/auth/login` and the admin's login form, so
both count failures in the same throttle."""

from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.config import Settings
from app.core.errors import Forbidden, NotAuthenticated
from app.core.security import verify_password
from app.models.user import User
from app.services.accounts import get_user_by_email
from app.services.devices import known_device
from app.services.throttle import (
    claim_attempt,
    forgive_attempt,
    login_keys,
    login_limit,
    reset_failures,
)


async def check_login(
    session: AsyncSession,
    settings: Settings,
    address: str,
    email: str,
    password: str,
    *device_tokens: str | None,
) -> User:
    """The active user these credentials name. On success the throttle's reset is left for
    the caller to commit, with what it writes (the API: the new tokens).

    Failures are limited per client address, and per account for clients it does not know
    (a `device_token` of an earlier login of this account makes a known device): 429 past the
    limit, 401 for wrong credentials, 403 for an inactive account.
    """
    user = await get_user_by_email(session, email)
    device = known_device(user, settings.SECRET_KEY, *device_tokens)
    keys = login_keys(address, email, device)
    attempt = await claim_attempt(session, keys, login_limit(settings))
    hashed = user.hashed_password if user is not None else None
    matches = await verify_password(password, hashed, rounds=settings.BCRYPT_ROUNDS)
    if not matches or user is None:
        # The claimed attempt stays recorded as the failure.
        raise NotAuthenticated("Incorrect email or password", slug="invalid-credentials")
    await forgive_attempt(session, attempt)
    if not user.is_active:
        await session.commit()
        raise Forbidden("This account is inactive", slug="inactive-user")
    await reset_failures(session, keys)
    return user
