"""The release phase: apply the migrations, then create the first superuser (both idempotent).

Migrations hold a PostgreSQL advisory lock (alembic/env.py), so hosts starting at once queue.
"""

import asyncio

from alembic.config import Config

from alembic import command
from app.core.config import PROJECT_ROOT, get_settings
from scripts.create_superuser import ensure_first_superuser


def main() -> None:
    get_settings()  # a bad configuration stops here, with a message naming the variable
    command.upgrade(Config(str(PROJECT_ROOT / "alembic.ini")), "head")
    print(asyncio.run(ensure_first_superuser()), flush=True)


if __name__ == "__main__":
    main()
