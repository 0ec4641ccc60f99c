"""delta sync: change stamps, tombstones and their triggers (app/crud/sync/schema.py)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 07:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op
from app.crud.sync.schema import DROP_POSTGRES_FUNCTIONS, POSTGRES_FUNCTIONS

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SYNCED = ("posts", "comments", "tags")


def upgrade() -> None:
    op.create_table(
        "sync_tombstones",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("resource", sa.String(length=63), nullable=False),
        sa.Column("row_id", sa.BigInteger(), nullable=False),
        sa.Column("xid", sa.BigInteger(), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_tombstones")),
    )
    op.create_index(
        "ix_sync_tombstones_resource_xid_row_id",
        "sync_tombstones",
        ["resource", "xid", "row_id"],
    )
    op.create_index(op.f("ix_sync_tombstones_deleted_at"), "sync_tombstones", ["deleted_at"])
    op.create_table(
        "sync_clock",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_clock")),
    )
    if op.get_context().dialect.name == "postgresql":
        for function in POSTGRES_FUNCTIONS:
            op.execute(function)
    for table in SYNCED:
        with op.batch_alter_table(table) as batch_op:
            batch_op.add_column(
                sa.Column("sync_xid", sa.BigInteger(), server_default="0", nullable=False)
            )
            batch_op.create_index(f"ix_{table}_sync_xid_id", ["sync_xid", "id"])
        op.create_sync_triggers(table)


def downgrade() -> None:
    for table in SYNCED:
        op.drop_sync_triggers(table)
        op.drop_index(f"ix_{table}_sync_xid_id", table_name=table)
        # Not batch: recreating posts on SQLite would break post_votes' triggers.
        op.drop_column(table, "sync_xid")
    if op.get_context().dialect.name == "postgresql":
        for function in DROP_POSTGRES_FUNCTIONS:
            op.execute(function)
    op.drop_table("sync_clock")
    op.drop_index(op.f("ix_sync_tombstones_deleted_at"), table_name="sync_tombstones")
    op.drop_index("ix_sync_tombstones_resource_xid_row_id", table_name="sync_tombstones")
    op.drop_table("sync_tombstones")
