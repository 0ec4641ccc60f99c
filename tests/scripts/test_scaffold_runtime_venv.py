"""The scaffold runs from the venv `scripts/run` makes: requirements.txt only (issue 13)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT
from tests.scripts.test_new_resource import NOT_COPIED


def test_scaffold_runs_and_formats_with_only_the_runtime_requirements(tmp_path: Path) -> None:
    """A copy gets its own .venv the way scripts/run makes it (~20 s of pip, from the cache)."""
    project = tmp_path / "project"
    shutil.copytree(ROOT, project, ignore=NOT_COPIED)
    env = {key: value for key, value in os.environ.items() if key != "TEST_DATABASE_URL"}
    env["DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
    env["PYTHON"] = sys.executable  # the interpreter ensure_venv makes .venv with

    def run(*command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            command, cwd=project, env=env, capture_output=True, text=True, timeout=600
        )

    venv = run("bash", "-c", "source scripts/_venv.sh && ensure_venv requirements.txt")
    assert venv.returncode == 0, venv.stdout + venv.stderr
    assert not list(project.glob(".venv/lib/python*/site-packages/pytest")), "the dev set is in"

    book = ["Book", "title:str", "author:str", "pages:int?", "--owner"]  # the command in issue 13
    scaffolded = run(".venv/bin/python", "scripts/new_resource.py", *book)
    assert scaffolded.returncode == 0, scaffolded.stdout + scaffolded.stderr
    migrations = sorted((project / "alembic/versions").glob("*_add_books.py"))
    assert len(migrations) == 1, scaffolded.stdout
    written = [project / "app/models/book.py", project / "tests/crud/test_books.py", *migrations]
    assert all(path.is_file() for path in written)

    formatted = run(sys.executable, "-m", "ruff", "format", "--check", *map(str, written))
    assert formatted.returncode == 0, formatted.stdout + formatted.stderr
