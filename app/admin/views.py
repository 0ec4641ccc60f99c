"""The admin's views: one per registered resource, generated from its declaration, and one for
users. Edits go through the same schemas and rules as the API."""

from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import (
    BigInteger,
    CursorResult,
    Result,
    String,
    cast,
    column,
    delete,
    func,
    or_,
    table,
)
from sqlmodel import SQLModel, select
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.requests import Request
from starlette_admin import BaseField, HasOne, row_action
from starlette_admin.contrib.sqla.converters import ModelConverter
from starlette_admin.contrib.sqlmodel import ModelView
from starlette_admin.converters import converts
from starlette_admin.exceptions import ActionFailed, FormValidationError

from app.admin.auth import SESSION_USER
from app.core.db import utcnow
from app.core.security import hash_password, password_fits_bcrypt
from app.crud.filters import escape_like
from app.crud.relations import resolve
from app.crud.resource import Resource
from app.models.user import UserUpdate
from app.services.accounts import (
    LastSuperuser,
    end_all_sessions,
    keep_a_superuser,
    lock_superusers,
)

USERS = "users"  # the users view's key
MIN_PASSWORD = 8
PASSWORD_FORM = """
<form>
  <label class="form-label" for="new-password">New password</label>
  <input type="password" class="form-control" id="new-password" name="password"
         minlength="8" autocomplete="new-password" required>
</form>
"""


def cast_result(result: Result[Any]) -> CursorResult[Any]:
    """A DML statement's result, which counts its rows."""
    assert isinstance(result, CursorResult)
    return result


def form_errors(error: ValidationError) -> FormValidationError:
    """Pydantic's errors, by field, as the form shows them."""
    errors: dict[str | int, Any] = {}
    for item in error.errors():
        field = item["loc"][0] if item["loc"] else "__root__"
        errors.setdefault(field, item["msg"])
    return FormValidationError(errors)


class FieldConverter(ModelConverter):
    """starlette-admin's column converter, plus SQLAlchemy 2.1's `Float`, which no longer
    subclasses `Numeric` (the type starlette-admin converts floats by)."""

    @converts("Float")
    def conv_float(self, *args: Any, **kwargs: Any) -> BaseField:
        return self.conv_numeric(*args, **kwargs)


class CheckedView(ModelView):
    """A model view whose creates and edits are validated by API schemas (`create_schema`,
    `update_schema`), with server-managed fields filled here, never from the form."""

    create_schema: type[BaseModel]
    update_schema: type[BaseModel]
    search_columns: tuple[str, ...] = ()
    count_limit: int | None = None  # exact counts up to this; past it, the planner's estimate
    owner_field: str | None = None  # set to the admin's own id on creates
    importers = ()  # bulk imports would bypass the API's bulk rules: use /<plural>/batch

    def __init__(self, model: type[SQLModel], key: str, menu_label: str) -> None:
        super().__init__(model, key=key, menu_label=menu_label, converter=FieldConverter())

    async def create(self, request: Request, data: dict[str, Any]) -> Any:
        request.state.admin_schema = self.create_schema
        return await super().create(request, data)

    async def edit(self, request: Request, pk: Any, data: dict[str, Any]) -> Any:
        request.state.admin_schema = self.update_schema
        return await super().edit(request, pk, data)

    async def validate(self, request: Request, data: dict[str, Any]) -> None:
        schema: type[BaseModel] = request.state.admin_schema
        payload = {name: data[name] for name in schema.model_fields if name in data}
        try:
            validated = schema.model_validate(payload)
        except ValidationError as error:
            raise form_errors(error) from None
        data.update(validated.model_dump(include=set(payload)))

    async def before_create(self, request: Request, data: dict[str, Any], obj: Any) -> None:
        now = utcnow()
        obj.created_at, obj.updated_at, obj.version = now, now, 1
        if self.owner_field:
            setattr(obj, self.owner_field, request.session[SESSION_USER])

    async def before_edit(self, request: Request, data: dict[str, Any], obj: Any) -> None:
        # API clients holding the old ETag get 412 from now on.
        obj.updated_at, obj.version = utcnow(), obj.version + 1

    def get_search_query(self, request: Request, term: str) -> Any:
        pattern = f"%{escape_like(term)}%"  # bound, never SQL: the text is only text
        columns = (getattr(self.model, name) for name in self.search_columns)
        return or_(*(cast(column, String).ilike(pattern, escape="\\") for column in columns))

    async def count(self, request: Request, q: str | None = None, filters: Any = None) -> int:
        """Unfiltered, a table past `count_limit` rows is counted by PostgreSQL's estimate (as
        the API's totals are), not by reading every row for each page; searches count exactly."""
        searched = q is not None or (filters is not None and not filters.is_empty())
        if self.count_limit is not None and not searched:
            session: AsyncSession = request.state.session
            if (await session.connection()).dialect.name == "postgresql":
                name = self.model.__tablename__
                estimate = await session.exec(
                    select(cast(column("reltuples"), BigInteger))
                    .select_from(table("pg_class"))
                    .where(column("oid") == func.to_regclass(name))
                )
                rows = estimate.one()
                if rows > self.count_limit:
                    return int(rows)
        return await super().count(request, q, filters)

    async def delete(self, request: Request, pks: list[Any]) -> int | None:
        """One DELETE: the database cascades as it does for the API (the ORM would load and
        orphan each child first)."""
        session: AsyncSession = request.state.session
        ids = [int(pk) for pk in pks]
        result = await session.exec(delete(self.model).where(self.model.id.in_(ids)))
        return int(cast_result(result).rowcount)


def default_sort(resource: Resource) -> tuple[str, bool]:
    """The resource's first default sort key as (field, descending)."""
    first = resource.default_sort.split(",")[0].strip()
    return first.lstrip("-"), first.startswith("-")


def writable_fields(schema: type[BaseModel], references: dict[str, str]) -> set[str]:
    """The form fields a schema writes: its own, and the relation of each reference it sets."""
    return {*schema.model_fields, *(references[n] for n in schema.model_fields if n in references)}


def resource_view(resource: Resource) -> CheckedView:
    """The view of a registered resource: its public columns, each to-one relation by its
    label, search on its search fields, sort on its sort fields, filters on its filters."""
    relations = resolve(resource)
    references = {
        to_one.local_key: name
        for name, to_one in relations.to_one.items()
        if to_one.target is not None or to_one.sa_table.name == USERS
    }
    public = [name for name in resource.public.model_fields if name in resource.columns]
    fields: list[str | BaseField] = []
    for name in public:
        if name in references:
            target = relations.to_one[references[name]]
            key = target.target.plural if target.target is not None else USERS
            fields.append(HasOne(references[name], key=key, label=references[name].title()))
        else:
            fields.append(name)
    names = [field if isinstance(field, str) else field.name for field in fields]
    writable_create = writable_fields(resource.create, references)
    writable_update = writable_fields(resource.update, references)
    view_class = type(
        f"{resource.name}AdminView",
        (CheckedView,),
        {
            "fields": fields,
            "create_schema": resource.create,
            "update_schema": resource.update,
            "search_columns": resource.search_fields,
            "searchable_fields": [*resource.search_fields, *(resource.filter_fields or ())],
            "sortable_fields": [name for name in names if name in (resource.sort_fields or ())],
            "exclude_fields_from_create": [n for n in names if n not in writable_create],
            "exclude_fields_from_edit": [n for n in names if n not in writable_update],
            "count_limit": resource.count_limit,
            "owner_field": resource.owner_field,
            "fields_default_sort": [
                (resource.default_sort.lstrip("-"), resource.default_sort.startswith("-"))
            ],
        },
    )
    view: CheckedView = view_class(
        resource.table, key=resource.plural, menu_label=resource.plural.title()
    )
    return view


class UserView(CheckedView):
    """Users: never their password hash. "Set password" hashes a new one and ends every token
    of the account, as a password change does. Users are created by signing up (or
    scripts/create_superuser.py), and deleted through the API, which keeps a last superuser."""

    # Names: the converter makes them fields, as for the generated views.
    fields = ("id", "email", "full_name", "is_active", "is_superuser", "created_at", "updated_at")  # type: ignore[assignment]
    exclude_fields_from_edit = ("id", "created_at", "updated_at")
    search_columns = ("email", "full_name")
    searchable_fields = ("email", "full_name", "is_active", "is_superuser")
    sortable_fields = ("id", "email", "created_at")
    row_actions = ("view", "edit", "set_password")
    create_schema = UserUpdate  # unused: no creates
    update_schema = UserUpdate

    def can_create(self, request: Request) -> bool:
        return False

    def can_delete(self, request: Request) -> bool:
        return False

    async def repr(self, obj: Any, request: Request) -> str:
        return str(obj.full_name or obj.email)

    async def before_edit(self, request: Request, data: dict[str, Any], obj: Any) -> None:
        obj.updated_at = utcnow()
        session: AsyncSession = request.state.session
        await lock_superusers(session)
        await session.flush()
        try:
            await keep_a_superuser(session)
        except LastSuperuser as error:
            raise FormValidationError({"is_superuser": error.detail}) from None

    @row_action(
        name="set_password",
        text="Set password",
        form=PASSWORD_FORM,
        submit_btn_text="Set password",
        exclude_from_list=True,
    )
    async def set_password(self, request: Request, pk: Any) -> str:
        form = await request.form()
        password = str(form.get("password") or "")
        if len(password) < MIN_PASSWORD or not password_fits_bcrypt(password):
            raise ActionFailed(f"A password has {MIN_PASSWORD} to 72 bytes")
        session: AsyncSession = request.state.session
        user = await self.find_by_pk(request, pk)
        settings = request.app.state.settings
        user.hashed_password = await hash_password(password, settings.BCRYPT_ROUNDS)
        await end_all_sessions(session, user)
        return "The password is set; every login of the account has ended"
