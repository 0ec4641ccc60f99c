"""Create the first superuser from FIRST_SUPERUSER_EMAIL/PASSWORD; a no-op if unset.

Only while no superuser exists at all: once there is one, the operator manages them through
the API, and renaming or deleting this account must not bring it back on the next release.
Releases running at once take turns (the superusers lock), so the later one finds the first's.
"""

import asyncio

from sqlalchemy import exists
from sqlmodel import col, select

from app.core.config import get_settings
from app.core.database import Database
from app.models.user import User, UserCreate
from app.services.accounts import create_user, get_user_by_email, lock_superusers


async def ensure_first_superuser() -> str:
    settings = get_settings()
    email, password = settings.FIRST_SUPERUSER_EMAIL, settings.FIRST_SUPERUSER_PASSWORD
    if not email or not password:
        return "FIRST_SUPERUSER_EMAIL/PASSWORD not set: no superuser created"
    async with Database(settings) as db, db.sessionmaker() as session:
        await lock_superusers(session)
        existing = await get_user_by_email(session, email)
        if existing is not None and existing.is_superuser:
            return f"Superuser {email} already exists"
        if (await session.exec(select(exists().where(col(User.is_superuser))))).one():
            return f"A superuser already exists: {email} not created"
        if existing is not None:  # registered before the bootstrap: never promote it
            return f"{email} is a registered user, not a superuser: no superuser created"
        data = UserCreate(email=email, password=password, full_name="Superuser")
        await create_user(session, data, rounds=settings.BCRYPT_ROUNDS, is_superuser=True)
        await session.commit()
        return f"Created superuser {email}"


if __name__ == "__main__":
    print(asyncio.run(ensure_first_superuser()))
