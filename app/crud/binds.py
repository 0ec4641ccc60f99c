"""The names of the bind parameters in the generic layer's statements.

Each statement is built once per shape and run with each request's values under these names;
this module is the one place that names them.
"""

ITEM_ID = "item_id"
VIEWER_ID = "viewer_id"
LIMIT = "limit"
OFFSET = "offset"
SEARCH = "q"
PARENT_IDS = "parent_ids"  # the parents whose children a to-many relation nests
SYNC_STAMP = "sync_stamp"  # a change feed's position: the stamp...
SYNC_ROW = "sync_row"  # ...and row id it continues after


def filter_value(param: str, index: int | None = None) -> str:
    """A filter's value; `index` numbers the values of an `__in` list."""
    return f"f_{param}" if index is None else f"f_{param}_{index}"


def scope(field: str) -> str:
    """The value a nested list pins `field` to (its parent's id)."""
    return f"scope_{field}"


def after(position: int) -> str:
    """The cursor's sort value at `position`."""
    return f"after_{position}"


def tag_version(index: int) -> str:
    """The version in the `index`-th If-Match tag."""
    return f"tag_{index}"


def column_value(column: str) -> str:
    """A value written to `column`."""
    return f"v_{column}"
