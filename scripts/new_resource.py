#!/usr/bin/env python3
"""Scaffold a resource: model module, registry line, Alembic migration and tests, in one command.

    python scripts/new_resource.py Book title:str:unique author:str pages:int? \\
        published_on:date? post:fk? --owner --search title,author --upsert-key title

Field types: str, text, int, float, bool, date, datetime, decimal, uuid; `?` makes a field
optional. References: `post:fk` (a `post_id` column pointing at posts) or `editor_id:user:fk`
(only with --write superuser). Options after the type: `unique`, `index`, `max=N` (str and
text). Writes: owner with --owner, else superuser; `--write authenticated` lets any registered
user change any row, and says so. See README "Add a resource".
"""

import argparse
import importlib.util
import shlex
import subprocess
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as `python scripts/new_resource.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import make_url
from sqlmodel import SQLModel

import app.models  # noqa: F401  (declares every resource)
from app.core.config import PROJECT_ROOT, get_settings
from app.crud.resource import Read, Resource, Write, registry
from scripts.scaffold import (
    USERS_TABLE,
    FieldSpec,
    ResourceSpec,
    SpecError,
    Target,
    names,
    parse_field,
    render_module,
)
from scripts.scaffold_tests import render_tests

MODELS = PROJECT_ROOT / "app" / "models"
TESTS = PROJECT_ROOT / "tests" / "crud"
VERSIONS = PROJECT_ROOT / "alembic" / "versions"


def resource_variable(resource: Resource) -> tuple[str, str]:
    """(module, name) under which a resource's declaration can be imported."""
    module = sys.modules[resource.table.__module__]
    for name, value in vars(module).items():
        if value is resource:
            return module.__name__, name
    raise SpecError(f"cannot find the declaration of {resource.plural} in {module.__name__}")


def resolve_target(spec: FieldSpec, own_names: set[str]) -> Target:
    wanted = spec.target_name or ""
    if wanted in ("user", "users"):
        return Target(USERS_TABLE)
    if wanted in own_names:
        raise SpecError(f"{spec.name}: a reference to the resource itself is not supported yet")
    for resource in registry:
        module_name = resource.table.__module__.rsplit(".", 1)[-1]  # book_review
        if wanted in (resource.name.lower(), module_name, resource.plural, resource.sa_table.name):
            module, variable = resource_variable(resource)
            return Target(resource.sa_table.name, resource, variable, module)
    known = ", ".join(["user", *(resource.name.lower() for resource in registry)])
    raise SpecError(f"{spec.name}: no resource named {wanted!r} to refer to (known: {known})")


def build_spec(args: argparse.Namespace, command: str) -> ResourceSpec:
    class_name, module, table, plural = names(args.name, args.plural)
    if not args.fields:
        raise SpecError("give at least one field, e.g. title:str")
    fields = [parse_field(text) for text in args.fields]
    seen: set[str] = set()
    for spec in fields:
        if spec.name in seen:
            raise SpecError(f"field {spec.name!r} is given twice")
        seen.add(spec.name)
        if spec.kind == "fk":
            spec.target = resolve_target(spec, {module, table, class_name.lower()})
    if table in SQLModel.metadata.tables:
        raise SpecError(f"a table named {table!r} exists already (choose a name or --plural)")
    for resource in registry:
        if plural == resource.plural or class_name == resource.name:
            raise SpecError(f"a resource {resource.name} ({resource.plural}) exists already")
    read, write = Read(args.read), Write(args.write or ("owner" if args.owner else "superuser"))
    if (read is Read.OWNER or write is Write.OWNER) and not args.owner:
        raise SpecError("--read owner and --write owner need --owner (an owner_id column)")
    search = tuple(name for name in (args.search or "").split(",") if name)
    by_name = {spec.name: spec for spec in fields}
    for name in search:
        if name not in by_name or by_name[name].kind not in ("str", "text"):
            raise SpecError(f"--search {name}: search fields are str or text fields")
    upsert_key = args.upsert_key
    if upsert_key is not None:
        key = by_name.get(upsert_key)
        if key is None or not key.unique or key.optional or key.kind not in ("str", "int"):
            raise SpecError(f"--upsert-key {upsert_key}: a required str or int field with :unique")
    return ResourceSpec(
        class_name,
        module,
        table,
        plural,
        fields,
        args.owner,
        read,
        write,
        search,
        command,
        upsert_key,
    )


def run(*command: str) -> subprocess.CompletedProcess[str]:
    """Alembic in its own process, so that it imports the models as now written."""
    return subprocess.run(
        [sys.executable, "-m", *command], cwd=PROJECT_ROOT, capture_output=True, text=True
    )


def next_revision() -> str | None:
    """The next number after a numbered single head (0007 -> 0008); None lets Alembic pick."""
    heads = ScriptDirectory.from_config(Config(str(PROJECT_ROOT / "alembic.ini"))).get_heads()
    if len(heads) > 1:
        raise SpecError(f"Alembic has several heads ({', '.join(heads)}): merge them first")
    if heads and heads[0].isdigit():
        return f"{int(heads[0]) + 1:0{len(heads[0])}d}"
    return None


def add_import(init: Path, module: str) -> None:
    """Insert `from app.models import <module> as <module>` in sorted position."""
    line = f"from app.models import {module} as {module}"
    lines = init.read_text().splitlines()
    imports = [i for i, text in enumerate(lines) if text.startswith("from app.models import ")]
    position = next(
        (i for i in imports if lines[i] > line), imports[-1] + 1 if imports else len(lines)
    )
    lines.insert(position, line)
    init.write_text("\n".join(lines) + "\n")


def scaffold(spec: ResourceSpec) -> list[Path]:
    module_path = MODELS / f"{spec.module}.py"
    test_path = TESTS / f"test_{spec.table}.py"
    init = MODELS / "__init__.py"
    for path in (module_path, test_path):
        if path.exists():
            raise SpecError(
                f"{path.relative_to(PROJECT_ROOT)} exists: the scaffold never overwrites"
            )
    if f"from app.models import {spec.module} " in init.read_text():
        raise SpecError(f"app/models/__init__.py imports {spec.module} already")
    if importlib.util.find_spec("ruff") is None:  # a .venv made before ruff joined requirements.txt
        raise SpecError(
            f"ruff is not installed in {sys.prefix}; it formats the generated files: "
            "pip install -r requirements.txt"
        )
    revision = next_revision()
    resources = {resource.sa_table.name: resource for resource in registry}
    module_text, test_text = render_module(spec), render_tests(spec, resources)

    url = make_url(get_settings().DATABASE_URL).render_as_string(hide_password=True)
    print(f"Upgrading {url} to head first: autogenerate compares the models with it")
    upgraded = run("alembic", "upgrade", "head")
    if upgraded.returncode != 0:
        raise SpecError(f"alembic upgrade head failed:\n{upgraded.stderr}")

    original_init = init.read_text()
    written = [module_path, test_path]
    before = set(VERSIONS.iterdir())
    try:
        module_path.write_text(module_text)
        test_path.write_text(test_text)
        add_import(init, spec.module)
        run("ruff", "check", "--fix", "--quiet", str(module_path), str(test_path))
        run("ruff", "format", "--quiet", str(module_path), str(test_path))
        command = ["alembic", "revision", "--autogenerate", "-m", f"add {spec.plural}"]
        if revision is not None:
            command += ["--rev-id", revision]
        generated = run(*command)
        if generated.returncode != 0:
            raise SpecError(f"alembic revision --autogenerate failed:\n{generated.stderr}")
        migration = next(iter(set(VERSIONS.iterdir()) - before), None)
    except BaseException:
        for path in [*written, *(set(VERSIONS.iterdir()) - before)]:
            path.unlink(missing_ok=True)
        init.write_text(original_init)
        raise
    files = [module_path, init, test_path]
    if migration is not None:
        files.append(migration)
        text = migration.read_text()
        if f'"{spec.table}"' not in text:
            print(f"warning: {migration.name} does not create {spec.table}; check the database")
    return files


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python scripts/new_resource.py",
        description="Write a resource's model module, registry line, migration and tests.",
        epilog="Example: Book title:str:unique author:str pages:int? post:fk? --owner "
        "--search title",
    )
    parser.add_argument("name", help="the resource's singular name: Book, BookReview, book_review")
    parser.add_argument("fields", nargs="*", help="name:type[?][:unique][:index][:max=N] ...")
    parser.add_argument("--owner", action="store_true", help="add owner_id (the creating user)")
    parser.add_argument("--search", help="comma-separated str/text fields searched by ?q=")
    parser.add_argument("--read", choices=[r.value for r in Read], default="public")
    parser.add_argument(
        "--write",
        choices=[w.value for w in Write],
        help="default: owner with --owner, else superuser (authenticated: any user, any row)",
    )
    parser.add_argument("--plural", help="the table and URL name (default: English plural)")
    parser.add_argument(
        "--upsert-key", help="a :unique str or int field to create or replace rows by"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    shown = [
        "python scripts/new_resource.py",
        *map(shlex.quote, sys.argv[1:] if argv is None else argv),
    ]
    try:
        spec = build_spec(args, " ".join(shown))
        if spec.write is Write.AUTHENTICATED:  # registration is open: that is anyone
            print(
                f"new_resource: warning: --write authenticated lets any registered user change "
                f"or delete any row of {spec.plural}, not only their own",
                file=sys.stderr,
            )
        files = scaffold(spec)
    except SpecError as error:
        print(f"new_resource: {error}", file=sys.stderr)
        return 1
    print("Wrote:")
    for path in files:
        print(f"  {path.relative_to(PROJECT_ROOT)}")
    test = f"tests/crud/test_{spec.table}.py"
    print("Next: apply the migration and run the new tests:")
    print(f"  .venv/bin/alembic upgrade head && scripts/test {test}")
    print(f"Then scripts/run serves /api/v1/{spec.plural} (see /docs).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
