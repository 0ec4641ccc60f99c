from fastapi import APIRouter, Request, Response, status
from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.api.deps import CurrentUser, SettingsDep, SuperUser
from app.core.db import SessionDep, utcnow
from app.core.errors import BadRequest, NotFound, problem_responses
from app.core.security import hash_password, verify_password
from app.crud.pagination import (
    DEFAULT_LIMIT,
    LimitParam,
    OffsetParam,
    page_model,
    set_page_headers,
)
from app.models.user import PasswordChange, User, UserPublic, UserUpdate, UserUpdateMe
from app.services.accounts import EmailTaken, get_user_by_email, revoke_all_refresh_tokens

router = APIRouter(prefix="/users", tags=["users"])

UserList = page_model(UserPublic)


async def apply_update(session: AsyncSession, user: User, data: UserUpdateMe) -> UserPublic:
    changes = data.model_dump(exclude_unset=True)
    new_email = changes.get("email", user.email)
    if new_email != user.email and await get_user_by_email(session, new_email) is not None:
        raise EmailTaken()
    user.sqlmodel_update(changes)
    user.updated_at = utcnow()
    session.add(user)
    await session.commit()
    return UserPublic.model_validate(user)


async def get_user_or_404(session: AsyncSession, user_id: int) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound(f"User {user_id} not found")
    return user


@router.get("/me", operation_id="users-read-me", responses=problem_responses(401))
async def read_me(user: CurrentUser) -> UserPublic:
    return UserPublic.model_validate(user)


@router.patch("/me", operation_id="users-update-me", responses=problem_responses(401, 409, 422))
async def update_me(data: UserUpdateMe, user: CurrentUser, session: SessionDep) -> UserPublic:
    return await apply_update(session, user, data)


@router.post(
    "/me/password",
    operation_id="users-change-password",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(400, 401, 422),
)
async def change_password(
    data: PasswordChange, user: CurrentUser, session: SessionDep, settings: SettingsDep
) -> None:
    if not await verify_password(data.current_password, user.hashed_password):
        raise BadRequest("The current password is wrong", slug="wrong-password")
    user.hashed_password = await hash_password(data.new_password, settings.BCRYPT_ROUNDS)
    user.updated_at = utcnow()
    session.add(user)
    assert user.id is not None
    await revoke_all_refresh_tokens(session, user.id)
    await session.commit()


@router.get("", operation_id="users-list", responses=problem_responses(401, 403, 422))
async def list_users(
    _admin: SuperUser,
    session: SessionDep,
    request: Request,
    response: Response,
    limit: LimitParam = DEFAULT_LIMIT,
    offset: OffsetParam = 0,
) -> UserList:  # type: ignore[valid-type]  # a model built at runtime
    total = (await session.exec(select(func.count()).select_from(User))).one()
    rows = await session.exec(select(User).order_by(col(User.id)).limit(limit).offset(offset))
    items = [UserPublic.model_validate(user) for user in rows]
    set_page_headers(response, request.url, total=total, limit=limit, offset=offset)
    return UserList(items=items, total=total, limit=limit, offset=offset)


@router.get(
    "/{user_id}", operation_id="users-read", responses=problem_responses(401, 403, 404, 422)
)
async def read_user(user_id: int, _admin: SuperUser, session: SessionDep) -> UserPublic:
    return UserPublic.model_validate(await get_user_or_404(session, user_id))


@router.patch(
    "/{user_id}", operation_id="users-update", responses=problem_responses(401, 403, 404, 409, 422)
)
async def update_user(
    user_id: int, data: UserUpdate, _admin: SuperUser, session: SessionDep
) -> UserPublic:
    return await apply_update(session, await get_user_or_404(session, user_id), data)


@router.delete(
    "/{user_id}",
    operation_id="users-delete",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(401, 403, 404, 422),
)
async def delete_user(user_id: int, _admin: SuperUser, session: SessionDep) -> None:
    await session.delete(await get_user_or_404(session, user_id))
    await session.commit()
