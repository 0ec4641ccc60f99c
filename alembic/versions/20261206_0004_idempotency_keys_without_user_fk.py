"""idempotency keys belong to a caller id, not to the users table

The generic layer knows no user table: its keys carry the caller's id and expire in 24 hours
(scripts/purge.py deletes them), so they need no foreign key to users.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06 23:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.drop_constraint("fk_idempotency_keys_user_id_users", type_="foreignkey")


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM idempotency_keys WHERE user_id NOT IN (SELECT id FROM users)"))
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.create_foreign_key(
            "fk_idempotency_keys_user_id_users", "users", ["user_id"], ["id"], ondelete="CASCADE"
        )
