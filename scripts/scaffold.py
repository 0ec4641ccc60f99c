"""What `scripts/new_resource.py` writes: field specs parsed from the command line, rendered.

A field is `name:type`, `name:type?` (optional) or a reference `name_id:target:fk` (`post:fk` is
short for `post_id:post:fk`), followed by options: `unique`, `index`, `max=N` (str and text).

A reference to users is only for resources that superusers alone write: the 422
`missing-reference` it answers for an unknown id would tell any other writer which users exist
(a reference to a resource is checked for existence *and* visibility, so it tells nothing).
"""

import keyword
import re
import textwrap
from dataclasses import dataclass
from typing import Any

from sqlmodel import SQLModel

from app.core.examples import FORMAT_EXAMPLES
from app.crud.docs import article, words
from app.crud.resource import Read, Resource, Write

TYPES = ("str", "text", "int", "float", "bool", "date", "datetime", "decimal", "uuid")
IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]*$")
DEFAULT_MAX_LENGTH = {"str": 255, "text": 10_000}
# Columns every resource has, the list's query parameters, and names the module imports.
RESERVED = {"id", "created_at", "updated_at", "version", "owner_id"}
RESERVED |= {"limit", "offset", "cursor", "sort", "q"}
RESERVED |= {"date", "datetime", "field_validator", "register"}
USERS_TABLE = "users"


class SpecError(ValueError):
    """A command-line spec the scaffold refuses; the message says why."""


@dataclass(frozen=True)
class Target:
    """The table a reference points at, and its resource when it is one (users are not)."""

    table: str
    resource: Resource | None = None
    variable: str | None = None  # the module-level name of the resource's declaration
    module: str | None = None


@dataclass
class FieldSpec:
    name: str
    kind: str  # one of TYPES, or "fk"
    optional: bool = False
    unique: bool = False
    index: bool = False
    max_length: int | None = None
    target_name: str | None = None  # as written: "post", "user"
    target: Target | None = None


@dataclass
class ResourceSpec:
    class_name: str
    module: str
    table: str
    plural: str
    fields: list[FieldSpec]
    owner: bool = False
    read: Read = Read.PUBLIC
    write: Write = Write.SUPERUSER
    search: tuple[str, ...] = ()
    command: str = ""
    upsert_key: str | None = None  # a :unique field: PUT /<plural>/by-<key>/{value}

    def __post_init__(self) -> None:
        names = {spec.name for spec in self.fields}
        for spec in self.fields:
            if spec.kind == "fk" and relation_name(spec) in names:
                raise SpecError(
                    f"{spec.name}: its relation is named {relation_name(spec)!r}, a field already"
                )
        if self.user_references and self.write is not Write.SUPERUSER:
            raise SpecError(
                f"{', '.join(self.user_references)}: only superusers may set a user reference "
                "(--write superuser); for any other writer its 422 missing-reference would tell "
                "which user ids exist"
            )

    @property
    def by_name(self) -> dict[str, FieldSpec]:
        return {spec.name: spec for spec in self.fields}

    @property
    def user_references(self) -> list[str]:
        """The fields referring to users (resolved targets only)."""
        return [f.name for f in self.fields if f.target and f.target.table == USERS_TABLE]


def check_identifier(name: str, what: str) -> None:
    if not IDENTIFIER.match(name) or "__" in name or name.endswith("_"):
        raise SpecError(f"{what} {name!r}: use lower_snake_case letters, digits and single _")
    if keyword.iskeyword(name) or keyword.issoftkeyword(name):
        raise SpecError(f"{what} {name!r} is a Python keyword")


def check_field_name(name: str) -> None:
    check_identifier(name, "field")
    if name in RESERVED or name.startswith("model_") or hasattr(SQLModel, name):
        raise SpecError(f"field {name!r} is reserved (the scaffold or SQLModel uses that name)")


def parse_field(text: str) -> FieldSpec:
    parts = text.split(":")
    if len(parts) < 2 or not all(parts):
        raise SpecError(f"{text!r}: expected name:type, e.g. title:str or post:fk")
    name, rest = parts[0], parts[1:]
    target_name = None
    if rest[0].removesuffix("?") == "fk":  # post:fk -> post_id:post:fk
        target_name, name = name, f"{name}_id"
        kind_text, options = rest[0], rest[1:]
    elif len(rest) > 1 and rest[1].removesuffix("?") == "fk":
        target_name, kind_text, options = rest[0], rest[1], rest[2:]
        if not name.endswith("_id"):
            raise SpecError(f"{text!r}: a reference's name ends in _id ({name}_id:...)")
    else:
        kind_text, options = rest[0], rest[1:]
    spec = FieldSpec(name, kind_text.removesuffix("?"), optional=kind_text.endswith("?"))
    spec.target_name = target_name
    check_field_name(name)
    if spec.kind not in (*TYPES, "fk"):
        raise SpecError(f"{text!r}: unknown type {spec.kind!r}; use one of {', '.join(TYPES)}")
    for option in options:
        if option == "unique":
            spec.unique = True
        elif option == "index":
            spec.index = True
        elif option.startswith("max=") and spec.kind in DEFAULT_MAX_LENGTH:
            value = option.removeprefix("max=")
            if not value.isdigit() or int(value) < 1:
                raise SpecError(f"{text!r}: max= takes a positive integer")
            spec.max_length = int(value)
        else:
            raise SpecError(
                f"{text!r}: unknown option {option!r} (unique, index, max=N for str/text)"
            )
    if spec.kind in DEFAULT_MAX_LENGTH and spec.max_length is None:
        spec.max_length = DEFAULT_MAX_LENGTH[spec.kind]
    return spec


def pluralize(word: str) -> str:
    if word.endswith("y") and word[-2:-1] not in ("a", "e", "i", "o", "u"):
        return word[:-1] + "ies"
    if word.endswith(("s", "x", "z", "ch", "sh")):
        return word + "es"
    return word + "s"


def names(text: str, plural: str | None) -> tuple[str, str, str, str]:
    """`BookReview` or `book_review` -> (class, module, table, URL plural).

    The URL plural is one word (`bookreviews`): it is also the OpenAPI tag, which the operation
    ids start with before their first hyphen.
    """
    if re.fullmatch(r"[A-Z][A-Za-z0-9]*", text):
        module = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", text).lower()
    else:
        module = text
    check_identifier(module, "resource name")
    class_name = "".join(part.capitalize() for part in module.split("_"))
    table = plural.replace("-", "_") if plural else pluralize(module)
    check_identifier(table, "plural")
    return class_name, module, table, table.replace("_", "")


# -- rendering ---------------------------------------------------------------------------------


def command_lines(spec: ResourceSpec) -> list[str]:
    """The command that generated a file, wrapped to fit a docstring."""
    return textwrap.wrap(spec.command, 90, initial_indent="    ", subsequent_indent="        ")


class Code(str):
    """Python source that `literal` inserts as is."""


def tuple_literal(items: tuple[str, ...]) -> str:
    return "(" + ", ".join(map(repr, items)) + ("," if len(items) == 1 else "") + ")"


def literal(value: Any) -> str:
    if isinstance(value, Code):
        return str(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key!r}: {literal(item)}" for key, item in value.items()) + "}"
    return repr(value)


ANNOTATIONS = {
    "str": "str",
    "text": "str",
    "int": "int",
    "float": "float",
    "bool": "bool",
    "date": "date",
    "datetime": "datetime",
    "decimal": "Decimal",
    "uuid": "UUID",
    "fk": "int",
}


def example(spec: FieldSpec) -> Any:
    """The example `/docs` shows for the field; the developer replaces it with a real one."""
    examples: dict[str, Any] = {
        "str": f"Example {words(spec.name)}",
        "text": f"Some {words(spec.name)}, in a sentence or two.",
        "int": 3,
        "float": 2.5,
        "bool": True,
        "date": FORMAT_EXAMPLES["date"],
        "datetime": FORMAT_EXAMPLES["date-time"],
        "decimal": "19.99",
        "uuid": FORMAT_EXAMPLES["uuid"],
        "fk": 1,
    }
    value = examples[spec.kind]
    return value[: spec.max_length] if isinstance(value, str) and spec.max_length else value


def field_line(spec: FieldSpec, *, update: bool = False, table: bool = False) -> str:
    """One field of Base (default), Update (all optional) or the table (references)."""
    optional = spec.optional or update
    arguments = ["default=None"] if optional else []
    if table:  # only references are redeclared on the table
        target = spec.target
        assert target is not None
        ondelete = "SET NULL" if spec.optional else "CASCADE"
        arguments += [f'foreign_key="{target.table}.id"', f'ondelete="{ondelete}"', "index=True"]
    else:
        if spec.kind == "fk":
            arguments.append("ge=1")
        if spec.max_length is not None:
            arguments.append(f"max_length={spec.max_length:_}")
        if spec.kind == "decimal":
            arguments += ["max_digits=12", "decimal_places=2"]
        if not update:
            if spec.kind == "text":
                arguments.append("sa_type=Text")
            if spec.kind == "datetime":
                arguments.append("sa_type=UTCDateTime")
            if spec.unique:
                arguments.append("unique=True")
            if spec.index:
                arguments.append("index=True")
        arguments.append(f'schema_extra={{"examples": [{example(spec)!r}]}}')
    annotation = ANNOTATIONS[spec.kind] + (" | None" if optional else "")
    if arguments:
        return f"    {spec.name}: {annotation} = Field({', '.join(arguments)})"
    return f"    {spec.name}: {annotation}"


def related_model(spec: FieldSpec) -> tuple[str, str]:
    """(module, class) of the table model a reference points at."""
    target = spec.target
    assert target is not None
    if target.resource is None:
        return "app.models.user", "User"
    assert target.module is not None
    return target.module, target.resource.table.__name__


def relation_name(spec: FieldSpec) -> str:
    return spec.name.removesuffix("_id")


def expand_call(spec: FieldSpec) -> str:
    """`Expand("post")`; a user is shown as a public profile."""
    name = relation_name(spec)
    if related_model(spec)[1] == "User":
        return f'Expand("{name}", UserProfile)'
    return f'Expand("{name}")'


def relationship_line(spec: FieldSpec, resource: ResourceSpec) -> str:
    """The SQLModel `Relationship()` beside a reference's column: `post_id` -> `post`."""
    model = related_model(spec)[1]
    annotation = f"{model} | None" if spec.optional else model
    assert spec.target is not None
    same_table = [f for f in resource.fields if f.target and f.target.table == spec.target.table]
    # Two references to one table: SQLAlchemy must be told which column each one follows.
    kwargs = (
        f'sa_relationship_kwargs={{"foreign_keys": "{resource.class_name}.{spec.name}"}}'
        if len(same_table) > 1
        else ""
    )
    return f"    {relation_name(spec)}: {annotation} = Relationship({kwargs})"


def table_docstring(spec: ResourceSpec) -> list[str]:
    """The table class's docstring, which describes the resource's tag in `/docs`."""
    described = [article(words(relation_name(f))) for f in spec.fields]
    summary = f"{words(spec.table).capitalize()}: each has {', '.join(described)}."
    if spec.owner:
        summary += " A row belongs to the user who creates it."
    return ['    """' + "\n".join(textwrap.wrap(summary, 88, subsequent_indent="    ")) + '"""']


SUPERUSERS_ONLY = """\
# Superusers only: a user reference answers 422 missing-reference for an unknown
# user, which would tell any other writer which user ids exist (README, Add a resource).
"""


def render_module(spec: ResourceSpec) -> str:
    kinds = {field_.kind for field_ in spec.fields}
    datetimes = [f.name for f in spec.fields if f.kind == "datetime"]
    references = [f for f in spec.fields if f.kind == "fk"]
    parents = [f for f in references if f.target and f.target.resource is not None]
    Class = spec.class_name
    imports = []
    imports.append(f"from datetime import {'date, ' if 'date' in kinds else ''}datetime")
    if "decimal" in kinds:
        imports.append("from decimal import Decimal")
    if "uuid" in kinds:
        imports.append("from uuid import UUID")
    imports.append("")
    if datetimes:
        imports.append("from pydantic import field_validator")
    if "text" in kinds:
        imports.append("from sqlalchemy import Text")
    imports.append(f"from sqlmodel import Field, {'Relationship, ' if references else ''}SQLModel")
    imports.append("")
    if datetimes:
        imports.append("from app.core.db import UTCDateTime")
    crud_names = ["Resource", "register"]
    if parents:
        crud_names.insert(0, "Parent")
    if references:
        crud_names.insert(0, "Expand")
    if spec.read is not Read.PUBLIC:
        crud_names.insert(crud_names.index("Resource"), "Read")
    if spec.write is not Write.OWNER:
        crud_names.append("Write")
    imports.append(f"from app.crud.resource import {', '.join(sorted(crud_names, key=str.lower))}")
    imports.append("from app.crud.table import Versioned, input_config")
    modules: dict[str, set[str]] = {}
    for parent in parents:
        assert parent.target and parent.target.module and parent.target.variable
        modules.setdefault(parent.target.module, set()).add(parent.target.variable)
    for reference in references:
        module, model = related_model(reference)
        modules.setdefault(module, set()).add(model)
        if model == "User":  # what a nested user shows: never the email
            modules[module].add("UserProfile")
    for module, variables in sorted(modules.items()):
        imports.append(f"from {module} import {', '.join(sorted(variables))}")

    lines = [
        f'"""The {spec.plural} resource, generated by:',
        "",
        *command_lines(spec),
        "",
        'Edit freely."""',
        "",
        *imports,
    ]
    if datetimes:
        lines += [
            "",
            "",
            "def _require_timezone(value: datetime | None) -> datetime | None:",
            '    """The columns hold UTC, so a datetime without an offset is ambiguous."""',
            "    if value is not None and value.tzinfo is None:",
            '        raise ValueError("needs a timezone offset, e.g. 2024-05-17T12:30:00Z")',
            "    return value",
        ]
    aware = f"    _aware = field_validator({', '.join(map(repr, datetimes))})(_require_timezone)"
    lines += ["", "", f"class {Class}Base(SQLModel):"]
    lines += [field_line(f) for f in spec.fields]
    if datetimes:
        lines += ["", aware]
    lines += ["", "", f"class {Class}({Class}Base, Versioned, table=True):"]
    lines += [*table_docstring(spec), "", f'    __tablename__ = "{spec.table}"', ""]
    lines.append("    id: int | None = Field(default=None, primary_key=True)")
    if spec.owner:
        lines.append(
            '    owner_id: int = Field(foreign_key="users.id", ondelete="CASCADE", index=True)'
        )
    lines += [field_line(f, table=True) for f in references]
    if references:
        lines.append("")
        lines += [relationship_line(f, spec) for f in references]
    lines += [
        "",
        "",
        f"class {Class}Create({Class}Base):",
        "    model_config = input_config()",
    ]
    lines += [
        "",
        "",
        f"class {Class}Update(SQLModel):",
        "    model_config = input_config()",
        "",
    ]
    lines += [field_line(f, update=True) for f in spec.fields]
    if datetimes:
        lines += ["", aware]
    lines += ["", "", f"class {Class}Public({Class}Base):", "    id: int"]
    if spec.owner:
        lines.append("    owner_id: int")
    lines += ["    created_at: datetime", "    updated_at: datetime", "", ""]
    arguments = [
        f'plural="{spec.plural}"',
        f"table={Class}",
        f"create={Class}Create",
        f"update={Class}Update",
        f"public={Class}Public",
    ]
    if spec.read is not Read.PUBLIC:
        arguments.append(f"read=Read.{spec.read.name}")
    if spec.write is not Write.OWNER:
        arguments.append(f"write=Write.{spec.write.name}")
    if spec.owner:
        arguments.append('owner_field="owner_id"')
    if spec.search:
        arguments.append(f"search_fields={tuple_literal(spec.search)}")
    if spec.upsert_key:
        arguments.append(f"upsert_key={tuple_literal((spec.upsert_key,))}")
    if parents:
        declared = ", ".join(
            f'Parent("{f.name}", {f.target.variable})'  # type: ignore[union-attr]  # parents have targets
            for f in parents
        )
        arguments.append(f"parents=({declared},)")
    if references:  # `?expand=post` nests the referenced row
        expansions = ", ".join(expand_call(f) for f in references)
        arguments.append(f"expand=({expansions},)")
    declaration = [f"        {argument}," for argument in arguments]
    if spec.user_references:  # the why beside the policy, for whoever edits it later
        at = declaration.index("        write=Write.SUPERUSER,")
        declaration[at:at] = [f"        {line}" for line in SUPERUSERS_ONLY.splitlines()]
    lines += [f"{spec.table} = register(", "    Resource(", *declaration, "    )", ")", ""]
    return "\n".join(lines)
