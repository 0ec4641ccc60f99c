"""The README's TypeScript sync loop (tests/frontend/sync/follow.ts) against the live app.

esbuild compiles it (tsc from tests/js type-checks it first, strictly), then
`node --test sync.test.mjs` follows the posts while they change and compares its copy with the
list.
"""

import asyncio
import subprocess
from pathlib import Path

from fastapi import FastAPI
from httpx import AsyncClient

from tests.conftest import ROOT
from tests.factories import UserFactory
from tests.frontend.conftest import FRONTEND, NODE_MODULES, node_test, require_node_modules

FOLLOW = FRONTEND / "sync" / "follow.ts"
TSC = ROOT / "tests" / "js" / "node_modules" / ".bin" / "tsc"


def compile_follow(out_dir: Path) -> Path:
    if TSC.exists():  # the typed-client test's TypeScript (npm ci --prefix tests/js)
        checked = subprocess.run(
            [
                str(TSC),
                "--noEmit",
                "--strict",
                "--target",
                "es2022",
                "--module",
                "es2022",
                "--lib",
                "es2022,dom",
                str(FOLLOW),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr
    module = out_dir / "follow.mjs"
    built = subprocess.run(
        [
            str(NODE_MODULES / ".bin" / "esbuild"),
            str(FOLLOW),
            "--format=esm",
            f"--outfile={module}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert built.returncode == 0, built.stderr
    return module


async def test_the_readme_sync_loop_keeps_a_copy(
    app: FastAPI, live_url: str, tmp_path: Path
) -> None:
    require_node_modules()
    module = await asyncio.to_thread(compile_follow, tmp_path)
    async with AsyncClient(base_url=live_url) as http:
        user = await UserFactory(app, http).create()
        for title, published in (("Published", True), ("Draft", False)):
            body = {"title": title, "published": published}
            response = await http.post("/api/v1/posts", json=body, headers=user.headers)
            assert response.status_code == 201, response.text
    env = {"API_URL": live_url, "TOKEN": user.access_token, "FOLLOW_MODULE": str(module)}
    print(await node_test("sync.test.mjs", env))


def test_the_readme_shows_this_loop() -> None:
    source = FOLLOW.read_text().rstrip("\n")
    assert f"```ts\n{source}\n```" in (ROOT / "README.md").read_text()
