"""Every table module is imported here: Alembic and the router mount find resources through this."""

from app.crud import idempotency as idempotency  # the generic layer's own table
from app.models import comment as comment
from app.models import login_throttle as login_throttle
from app.models import post as post
from app.models import tag as tag
from app.models import user as user
