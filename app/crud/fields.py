"""The Python types of a resource's fields, as filters, sorting and cursors need them."""

from types import NoneType, UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel

from app.crud.resource import Resource


def without_none(annotation: Any) -> Any:
    """`X | None` -> `X`; anything else as it is."""
    if get_origin(annotation) in (Union, UnionType):
        return next(arg for arg in get_args(annotation) if arg is not NoneType)
    return annotation


def python_type(resource: Resource, field: str) -> type:
    """The field's type on the table model, without `| None`."""
    return model_type(resource.table, field)


def model_type(model: type[BaseModel], field: str) -> type:
    """A model field's type, without `| None` (and `Annotated`); str if it is no class."""
    annotation = without_none(model.model_fields[field].annotation)
    if get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    return annotation if isinstance(annotation, type) else str
