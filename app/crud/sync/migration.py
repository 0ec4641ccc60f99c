"""`op.create_sync_triggers("<table>")` and `op.drop_sync_triggers(...)` for migrations, and
the autogenerate hook that writes the first after each `op.create_table` of a synced table
(one with `sync_xid`): a scaffolded resource's migration makes it synced with no extra step.

Note for SQLite: a `batch_alter_table` that recreates a table drops its triggers; call
`op.create_sync_triggers` again after it (tests/test_migrations.py checks every synced table).
"""

from typing import Any

from alembic.autogenerate import renderers, rewriter
from alembic.operations import MigrateOperation, Operations, ops
from sqlalchemy import Column

from app.crud.sync.schema import SYNC_COLUMN, drop_trigger_statements, trigger_statements


@Operations.register_operation("create_sync_triggers")
class CreateSyncTriggersOp(MigrateOperation):
    def __init__(self, table_name: str) -> None:
        self.table_name = table_name

    @classmethod
    def create_sync_triggers(cls, operations: Operations, table_name: str) -> Any:
        return operations.invoke(cls(table_name))

    def reverse(self) -> "DropSyncTriggersOp":
        return DropSyncTriggersOp(self.table_name)


@Operations.register_operation("drop_sync_triggers")
class DropSyncTriggersOp(MigrateOperation):
    def __init__(self, table_name: str) -> None:
        self.table_name = table_name

    @classmethod
    def drop_sync_triggers(cls, operations: Operations, table_name: str) -> Any:
        return operations.invoke(cls(table_name))

    def reverse(self) -> CreateSyncTriggersOp:
        return CreateSyncTriggersOp(self.table_name)


@Operations.implementation_for(CreateSyncTriggersOp)
def create_sync_triggers(operations: Operations, operation: CreateSyncTriggersOp) -> None:
    dialect = operations.get_context().dialect.name
    for statement in trigger_statements(operation.table_name, dialect):
        operations.execute(statement)


@Operations.implementation_for(DropSyncTriggersOp)
def drop_sync_triggers(operations: Operations, operation: DropSyncTriggersOp) -> None:
    dialect = operations.get_context().dialect.name
    for statement in drop_trigger_statements(operation.table_name, dialect):
        operations.execute(statement)


@renderers.dispatch_for(CreateSyncTriggersOp)
def render_create(_context: Any, operation: CreateSyncTriggersOp) -> str:
    return f'op.create_sync_triggers("{operation.table_name}")'


@renderers.dispatch_for(DropSyncTriggersOp)
def render_drop(_context: Any, operation: DropSyncTriggersOp) -> str:
    return f'op.drop_sync_triggers("{operation.table_name}")'


add_sync_triggers = rewriter.Rewriter()


@add_sync_triggers.rewrites(ops.CreateTableOp)
def after_create_table(_context: Any, _revision: Any, operation: ops.CreateTableOp) -> Any:
    columns = {column.name for column in operation.columns if isinstance(column, Column)}
    if SYNC_COLUMN in columns:
        return [operation, CreateSyncTriggersOp(operation.table_name)]
    return operation
