"""scripts/new_resource.py: refusals here, and the whole scaffold in a copy of the project."""

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import make_url

from app.core.config import get_settings
from app.crud.resource import Write
from scripts.new_resource import main
from scripts.scaffold import ResourceSpec, SpecError, parse_field, render_module
from tests.conftest import IS_POSTGRES, ROOT

BOOK = [  # no --owner, no --write: the default policy, superusers only
    "Book",
    "title:str:unique:max=120",
    "author:str",
    "pages:int?",
    "price:decimal?",
    "rating:float?",
    "in_print:bool?",
    "published_on:date?",
    "released_at:datetime?",
    "code:uuid?",
    "notes:text?",
    "post:fk?",
    "editor_id:user:fk?",
    "--search",
    "title,author",
    "--upsert-key",
    "title",
]
NOTE = ["Note", "content:str", "book:fk", "--owner"]  # users write notes on superusers' books
NOT_COPIED = shutil.ignore_patterns(
    ".venv", ".git", "app.db", "app.db-*", "__pycache__", ".pytest_cache", ".ruff_cache"
)


@pytest.fixture
def scaffolded(monkeypatch: pytest.MonkeyPatch) -> list[ResourceSpec]:
    """What main() would scaffold; it writes nothing, even if a refusal stops working."""
    specs: list[ResourceSpec] = []

    def record(spec: ResourceSpec) -> list[Path]:
        specs.append(spec)
        return []

    monkeypatch.setattr("scripts.new_resource.scaffold", record)
    return specs


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["Post", "title:str"], "a table named 'posts' exists already"),
        (["Class", "name:str"], "resource name 'class' is a Python keyword"),
        (["Thing", "def:str"], "field 'def' is a Python keyword"),
        (["Thing", "limit:int"], "field 'limit' is reserved"),
        (["Thing", "name:text:unique", "name:str"], "field 'name' is given twice"),
        (["Thing", "size:huge"], "unknown type 'huge'"),
        (["Thing", "book:fk"], "no resource named 'book'"),
        (["Thing", "name:str", "--write", "owner"], "need --owner"),
        (["Thing", "size:int", "--search", "size"], "search fields are str or text"),
        (["Thing"], "give at least one field"),
        (["Thing", "name:str", "--upsert-key", "name"], "a required str or int field with :unique"),
        (["Thing", "post:str", "post:fk"], "its relation is named 'post', a field already"),
    ],
)
def test_refusals_name_the_problem_and_write_nothing(
    argv: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    scaffolded: list[ResourceSpec],
) -> None:
    before = sorted(path.name for path in (ROOT / "app" / "models").iterdir())
    assert main(argv) == 1
    assert message in capsys.readouterr().err
    assert scaffolded == []
    assert sorted(path.name for path in (ROOT / "app" / "models").iterdir()) == before


def test_only_superusers_write_by_default(
    scaffolded: list[ResourceSpec], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["Thing", "name:str"]) == 0
    assert main(["Thing", "name:str", "--owner"]) == 0
    assert [spec.write for spec in scaffolded] == [Write.SUPERUSER, Write.OWNER]
    assert "        write=Write.SUPERUSER,\n" in render_module(scaffolded[0])
    assert "write=" not in render_module(scaffolded[1])  # the declaration's default: owner
    assert "warning" not in capsys.readouterr().err


def test_write_authenticated_warns_that_anyone_may_change_any_row(
    scaffolded: list[ResourceSpec], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["Thing", "name:str", "--write", "authenticated"]) == 0
    assert scaffolded[0].write is Write.AUTHENTICATED
    warning = "warning: --write authenticated lets any registered user change or delete any row"
    assert warning in capsys.readouterr().err


@pytest.mark.parametrize(
    "policy", [["--owner"], ["--write", "authenticated"], ["--owner", "--write", "authenticated"]]
)
def test_user_references_need_superuser_writes(
    policy: list[str], scaffolded: list[ResourceSpec], capsys: pytest.CaptureFixture[str]
) -> None:
    """Other writers would learn which user ids exist from the 422 missing-reference."""
    assert main(["Thing", "name:str", "editor_id:user:fk?", *policy]) == 1
    error = capsys.readouterr().err
    assert "editor_id: only superusers may set a user reference (--write superuser)" in error
    assert "which user ids exist" in error
    assert scaffolded == []
    assert main(["Thing", "editor_id:user:fk", "--owner", "--write", "superuser"]) == 0
    assert main(["Thing", "editor_id:user:fk"]) == 0
    why = "# Superusers only: a user reference answers 422 missing-reference"
    assert why in render_module(scaffolded[-1])  # beside the policy, for whoever edits it


def test_two_references_to_one_table_say_which_column_each_follows(
    scaffolded: list[ResourceSpec],
) -> None:
    assert main(["Review", "editor_id:user:fk", "reviewer_id:user:fk?"]) == 0
    module = render_module(scaffolded[0])
    editor = (
        'editor: User = Relationship(sa_relationship_kwargs={"foreign_keys": "Review.editor_id"})'
    )
    assert f"    {editor}\n" in module
    assert '"foreign_keys": "Review.reviewer_id"' in module
    assert '"""Reviews: each has an editor, a reviewer."""' in module


def test_field_specs() -> None:
    title = parse_field("title:str:unique:max=80")
    assert (title.name, title.kind, title.unique, title.max_length) == ("title", "str", True, 80)
    post = parse_field("post:fk?")
    assert (post.name, post.kind, post.target_name, post.optional) == (
        "post_id",
        "fk",
        "post",
        True,
    )
    editor = parse_field("editor_id:user:fk:index")
    assert (editor.name, editor.target_name, editor.optional) == ("editor_id", "user", False)
    with pytest.raises(SpecError, match="ends in _id"):
        parse_field("editor:user:fk")
    with pytest.raises(SpecError, match="unknown option"):
        parse_field("pages:int:max=3")


@pytest.fixture
def test_database_url() -> Iterator[str | None]:
    """For the copy's own suite: a throw-away PostgreSQL database on that pass, else SQLite."""
    if not IS_POSTGRES:
        yield None
        return
    import psycopg

    server = make_url(get_settings().DATABASE_URL)
    admin = server.set(drivername="postgresql", database="postgres")
    name = f"scaffold_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_scaffold_end_to_end(tmp_path: Path, test_database_url: str | None) -> None:
    """Scaffold in a copy, migrate a fresh database, then the generated tests pass there."""
    project = tmp_path / "project"
    shutil.copytree(ROOT, project, ignore=NOT_COPIED)
    env = {key: value for key, value in os.environ.items() if key != "TEST_DATABASE_URL"}
    env["DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"

    def run(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, *args],
            cwd=project,
            env={**env, **extra},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result

    scaffolded = run("scripts/new_resource.py", *BOOK)
    assert "Upgrading sqlite+aiosqlite:///" in scaffolded.stdout
    for path in ("app/models/book.py", "tests/crud/test_books.py", "app/models/__init__.py"):
        assert f"  {path}\n" in scaffolded.stdout
    assert "_add_books.py" in scaffolded.stdout
    assert "alembic upgrade head && scripts/test tests/crud/test_books.py" in scaffolded.stdout
    assert "from app.models import book as book" in (project / "app/models/__init__.py").read_text()
    book = (project / "app/models/book.py").read_text()
    assert "write=Write.SUPERUSER," in book
    assert '"""Books: each has a title' in book  # the tag's description in /docs
    assert 'schema_extra={"examples": ["Example title"]}' in book
    # Each reference gets its SQLModel Relationship (issue 14); alembic check below sees no drift.
    assert "    post: Post | None = Relationship()\n" in book
    assert "    editor: User | None = Relationship()\n" in book
    assert "_add_notes.py" in run("scripts/new_resource.py", *NOTE).stdout
    # Synced like any other resource (issue 17): its migration adds the change triggers.
    [migration] = (project / "alembic/versions").glob("*_add_books.py")
    assert 'op.create_sync_triggers("books")' in migration.read_text()
    assert "    book: Book = Relationship()\n" in (project / "app/models/note.py").read_text()

    run("-m", "alembic", "upgrade", "head")
    checked = run("-m", "alembic", "check")
    assert "No new upgrade operations detected" in checked.stdout + checked.stderr
    run("-m", "ruff", "check", "app/models", "tests/crud", "alembic")

    again = subprocess.run(
        [sys.executable, "scripts/new_resource.py", *BOOK],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
    )
    assert again.returncode == 1
    assert "exists already" in again.stderr

    suite = {"TEST_DATABASE_URL": test_database_url} if test_database_url else {}
    modules = ("tests/crud/test_books.py", "tests/crud/test_notes.py")
    tested = run("-m", "pytest", *modules, "-v", "-p", "no:cacheprovider", **suite)
    assert " passed" in tested.stdout and "failed" not in tested.stdout
    for test in (  # a regular user's writes are 403; user ids cannot be probed
        "test_books.py::test_only_superusers_write PASSED",
        "test_books.py::test_user_ids_cannot_be_probed_through_editor_id PASSED",
        "test_notes.py::test_only_the_owner_writes PASSED",
        # an expand case per reference (issue 14)
        "test_books.py::test_expand_post PASSED",
        "test_books.py::test_expand_editor PASSED",
        "test_notes.py::test_expand_book PASSED",
        "test_books.py::test_changes_follow_writes PASSED",  # the change feed (issue 17)
    ):
        assert test in tested.stdout, tested.stdout
