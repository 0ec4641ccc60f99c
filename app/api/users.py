"""The caller's own account (`/users/me`), and every account for superusers."""

from fastapi import APIRouter, Request, Response
from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.api.deps import NO_CONTENT, CurrentUser, SettingsDep, SuperUser, operation
from app.core.client import client_address
from app.core.config import Settings
from app.core.db import SessionDep, utcnow
from app.core.errors import BadRequest, NotFound, Unprocessable, field_error
from app.core.problem_docs import problem_responses
from app.core.security import hash_password, verify_password
from app.crud.pagination import (
    DEFAULT_LIMIT,
    LimitParam,
    OffsetParam,
    page_model,
    set_page_headers,
)
from app.models.user import (
    PasswordChange,
    User,
    UserPublic,
    UserUpdate,
    UserUpdateBase,
    UserUpdateMe,
)
from app.services.accounts import (
    EmailTaken,
    end_all_sessions,
    get_user_by_email,
    keep_a_superuser,
    lock_superusers,
)
from app.services.throttle import (
    claim_attempt,
    forgive_attempt,
    password_keys,
    password_limit,
    reset_failures,
)

router = APIRouter(prefix="/users", tags=["users"])

UserList = page_model(UserPublic)


def wrong_password() -> BadRequest:
    return BadRequest("The current password is wrong", slug="wrong-password")


async def check_current_password(
    session: AsyncSession, request: Request, settings: Settings, user: User, password: str
) -> None:
    """400 for a wrong password, counted like a failed login: per address and per account.

    A right one is forgiven at once (committed), whatever the rest of the request does.
    """
    assert user.id is not None
    keys = password_keys(client_address(request, settings.PROXY_HOPS), user.id)
    attempt = await claim_attempt(session, keys, password_limit(settings))
    if not await verify_password(password, user.hashed_password, rounds=settings.BCRYPT_ROUNDS):
        raise wrong_password()  # the claimed attempt stays recorded as the failure
    await forgive_attempt(session, attempt)
    await reset_failures(session, keys)
    await session.commit()


async def apply_update(session: AsyncSession, user: User, data: UserUpdateBase) -> None:
    """Write the fields sent (flushed, not committed); a taken email is a 409."""
    changes = data.model_dump(exclude_unset=True, exclude={"current_password"})
    new_email = changes.get("email", user.email)
    if new_email != user.email and await get_user_by_email(session, new_email) is not None:
        raise EmailTaken()
    user.sqlmodel_update(changes)
    user.updated_at = utcnow()
    session.add(user)
    await session.flush()


async def get_user_or_404(session: AsyncSession, user_id: int) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound(f"User {user_id} not found")
    return user


@router.get(
    "/me",
    **operation("users-read-me", "Get the caller's account"),
    responses=problem_responses(401),
)
async def read_me(user: CurrentUser) -> UserPublic:
    """The account of the access token's user."""
    return UserPublic.model_validate(user)


@router.patch(
    "/me",
    **operation("users-update-me", "Update the caller's account (partial)"),
    responses=problem_responses(400, 401, 409, 422, 429),
)
async def update_me(
    data: UserUpdateMe,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    request: Request,
) -> UserPublic:
    """Changing the login email needs `current_password` (as changing the password does)."""
    if data.email is not None and data.email != user.email:
        if data.current_password is None:
            raise Unprocessable(
                "The current password is needed to change the email",
                errors=[field_error("current_password", "Field required", "missing")],
            )
        await check_current_password(session, request, settings, user, data.current_password)
    await apply_update(session, user, data)
    await session.commit()
    return UserPublic.model_validate(user)


@router.post(
    "/me/password",
    **operation("users-change-password", "Change the caller's password"),
    **NO_CONTENT,
    responses=problem_responses(400, 401, 422, 429),
)
async def change_password(
    data: PasswordChange,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    request: Request,
) -> None:
    """Every token of the account ends, this request's access token too: log in again."""
    await check_current_password(session, request, settings, user, data.current_password)
    user.hashed_password = await hash_password(data.new_password, settings.BCRYPT_ROUNDS)
    user.updated_at = utcnow()
    await end_all_sessions(session, user)
    await session.commit()


@router.get(
    "",
    **operation("users-list", "List users"),
    responses=problem_responses(401, 403, 422),
)
async def list_users(
    _admin: SuperUser,
    session: SessionDep,
    request: Request,
    response: Response,
    limit: LimitParam = DEFAULT_LIMIT,
    offset: OffsetParam = 0,
) -> UserList:  # type: ignore[valid-type]  # a model built at runtime
    """Superusers only; by id, offset pages with `X-Total-Count` and `Link`."""
    total = (await session.exec(select(func.count()).select_from(User))).one()
    rows = await session.exec(select(User).order_by(col(User.id)).limit(limit).offset(offset))
    items = [UserPublic.model_validate(user) for user in rows]
    set_page_headers(response, request.url, total=total, limit=limit, offset=offset)
    return UserList(items=items, total=total, limit=limit, offset=offset)


@router.get(
    "/{user_id}",
    **operation("users-read", "Get a user"),
    responses=problem_responses(401, 403, 404, 422),
)
async def read_user(user_id: int, _admin: SuperUser, session: SessionDep) -> UserPublic:
    """Superusers only."""
    return UserPublic.model_validate(await get_user_or_404(session, user_id))


def is_active_superuser(user: User) -> bool:
    return user.is_superuser and user.is_active


@router.patch(
    "/{user_id}",
    **operation("users-update", "Update a user (partial)"),
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def update_user(
    user_id: int, data: UserUpdate, _admin: SuperUser, session: SessionDep
) -> UserPublic:
    """Superusers only. Demoting or deactivating the last active superuser is a 409
    (`last-superuser`)."""
    user = await get_user_or_404(session, user_id)
    demotes = is_active_superuser(user) and (data.is_superuser is False or data.is_active is False)
    if demotes:
        await lock_superusers(session)
    await apply_update(session, user, data)
    if demotes:
        await keep_a_superuser(session)
    await session.commit()
    return UserPublic.model_validate(user)


@router.delete(
    "/{user_id}",
    **operation("users-delete", "Delete a user"),
    **NO_CONTENT,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def delete_user(user_id: int, _admin: SuperUser, session: SessionDep) -> None:
    """Superusers only. Deleting the last active superuser is a 409 (`last-superuser`)."""
    user = await get_user_or_404(session, user_id)
    removes = is_active_superuser(user)
    if removes:
        await lock_superusers(session)
    await session.delete(user)
    await session.flush()
    if removes:
        await keep_a_superuser(session)
    await session.commit()
