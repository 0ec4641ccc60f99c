"""refresh-token families, users.token_version, and ids SQLite never reissues

Each login's refresh tokens form a family with an absolute end; revoked tokens are kept until
then, so a replay can revoke the family. Access tokens carry the user's token_version. On
SQLite, users is rebuilt with AUTOINCREMENT, so a deleted user's id (and its tokens) never
names a new account; PostgreSQL's identity never reissues an id, so there it only gains the
column.

The tokens already issued each become a family of their own, ending when the token does.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 23:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def token_version() -> sa.Column[int]:
    return sa.Column("token_version", sa.Integer(), server_default="0", nullable=False)


def rebuild_users_on_sqlite(*, autoincrement: bool) -> bool:
    """Rebuild users with or without AUTOINCREMENT; False (nothing done) on PostgreSQL."""
    if op.get_context().dialect.name != "sqlite":
        return False
    # The rebuild drops the old table: with foreign keys enforced, that would delete every
    # row that references a user. Alembic's connection (alembic/env.py) leaves them off.
    if op.get_bind().exec_driver_sql("PRAGMA foreign_keys").scalar():
        raise RuntimeError("PRAGMA foreign_keys must be off to rebuild the users table")
    kwargs = {"sqlite_autoincrement": True} if autoincrement else {}
    with op.batch_alter_table("users", recreate="always", table_kwargs=kwargs) as batch:
        if autoincrement:
            batch.add_column(token_version())
        else:
            batch.drop_column("token_version")
    return True


def upgrade() -> None:
    if not rebuild_users_on_sqlite(autoincrement=True):
        op.add_column("users", token_version())
    with op.batch_alter_table("refresh_tokens") as batch:
        batch.add_column(
            sa.Column("family", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True)
        )
        batch.add_column(sa.Column("family_expires_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(token_version())
    op.execute(
        "UPDATE refresh_tokens SET family = substr(token_digest, 1, 32), "
        "family_expires_at = expires_at"
    )
    with op.batch_alter_table("refresh_tokens") as batch:
        batch.alter_column("family", existing_type=sa.String(32), nullable=False)
        batch.alter_column(
            "family_expires_at", existing_type=sa.DateTime(timezone=True), nullable=False
        )
        batch.create_index(op.f("ix_refresh_tokens_family"), ["family"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("refresh_tokens") as batch:
        batch.drop_index(op.f("ix_refresh_tokens_family"))
        batch.drop_column("token_version")
        batch.drop_column("family_expires_at")
        batch.drop_column("family")
    if not rebuild_users_on_sqlite(autoincrement=False):
        op.drop_column("users", "token_version")
