"""The typed client a frontend team generates with openapi-typescript compiles (tsc --strict).

Needs Node.js and `npm ci` in tests/js; without them the test skips, except under
REQUIRE_BROWSER_TESTS=1 (CI), where it fails.
"""

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT

JS = ROOT / "tests" / "js"
BIN = JS / "node_modules" / ".bin"
GENERATE_FLAGS = ("--default-non-nullable", "false")  # as the README tells frontend teams


def node_tool(name: str) -> Path:
    tool = BIN / name
    if shutil.which("node") is None or not tool.exists():
        if os.environ.get("REQUIRE_BROWSER_TESTS") == "1":
            pytest.fail(f"{tool} is missing: npm ci --prefix tests/js")
        pytest.skip(f"{tool} is missing (npm ci --prefix tests/js)")
    return tool


def run(*argv: str | Path, cwd: Path) -> None:
    result = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_openapi_typescript_output_compiles(spec: dict[str, Any], tmp_path: Path) -> None:
    generate, tsc = node_tool("openapi-typescript"), node_tool("tsc")
    (tmp_path / "openapi.json").write_text(json.dumps(spec))
    # FastAPI marks response fields with defaults required itself; the flag keeps request fields
    # with defaults optional (openapi-typescript 7 would make them required).
    run(generate, "openapi.json", *GENERATE_FLAGS, "--output", "api.d.ts", cwd=tmp_path)
    assert "export interface paths" in (tmp_path / "api.d.ts").read_text()
    shutil.copy(JS / "client.ts", tmp_path / "client.ts")
    run(tsc, "--strict", "--noEmit", "--target", "es2022", "client.ts", cwd=tmp_path)
