"""Create the first superuser from FIRST_SUPERUSER_EMAIL/PASSWORD; idempotent, a no-op if unset."""

import asyncio

from app.core.config import get_settings
from app.core.database import Database
from app.models.user import UserCreate
from app.services.accounts import create_user, get_user_by_email


async def ensure_first_superuser() -> str:
    settings = get_settings()
    email, password = settings.FIRST_SUPERUSER_EMAIL, settings.FIRST_SUPERUSER_PASSWORD
    if not email or not password:
        return "FIRST_SUPERUSER_EMAIL/PASSWORD not set: no superuser created"
    async with Database(settings) as db, db.sessionmaker() as session:
        if await get_user_by_email(session, email) is not None:
            return f"Superuser {email} already exists"
        data = UserCreate(email=email, password=password, full_name="Superuser")
        await create_user(session, data, rounds=settings.BCRYPT_ROUNDS, is_superuser=True)
        await session.commit()
        return f"Created superuser {email}"


if __name__ == "__main__":
    print(asyncio.run(ensure_first_superuser()))
