"""Every table module is imported here: Alembic and the router mount find them through this."""

from app.models import user as user
