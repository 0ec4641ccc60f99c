"""react-admin's data providers in Chromium, on a page from another origin than the API.

tests/frontend/page/main.mjs, bundled by esbuild at test time, lists posts with
ra-data-json-server (total from `X-Total-Count`) and ra-data-simple-rest (total from
`Content-Range`, asked for with a `Range` header) and shows rows and totals. The API's
CORS_ORIGINS names the page's origin: the totals reach the page's JavaScript only because
the app exposes those headers, and the bearer token and `Range` pass the preflight only
because it allows them. From an origin not in CORS_ORIGINS the same page gets nothing.
"""

from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from playwright.async_api import Browser, Page, expect

from tests.factories import UserFactory
from tests.frontend.conftest import (
    FRONTEND,
    NODE_MODULES,
    Pages,
    require_node_modules,
    run_in_frontend,
)

INDEX = """<!doctype html>
<html><head><meta charset="utf-8"><title>Posts</title></head>
<body><h1>Posts from another origin</h1><script type="module" src="app.js"></script></body></html>
"""
DIALECTS = ("json-server", "simple-rest")


@pytest.fixture(scope="module")
def bundled(pages: Pages) -> Path:
    """The page and its script, bundled into the static servers' directory."""
    require_node_modules()
    out = pages.directory / "app.js"
    argv = [
        str(NODE_MODULES / ".bin" / "esbuild"),
        str(FRONTEND / "page" / "main.mjs"),
        "--bundle",
        "--format=esm",
        "--platform=browser",
        '--define:process.env.NODE_ENV="production"',
        f"--outfile={out}",
        "--log-level=warning",
    ]
    result = run_in_frontend(argv, {})
    assert result.returncode == 0, result.stdout + result.stderr
    (pages.directory / "index.html").write_text(INDEX)
    return out


@pytest.fixture
async def page(browser: Browser, bundled: Path) -> AsyncIterator[tuple[Page, list[str], list[str]]]:
    """A page, its console messages and the URLs it requested.

    Watched, not intercepted: with `context.route()` Playwright answers CORS preflights itself,
    and the app's preflight answers would go untested.
    """
    context = await browser.new_context(viewport={"width": 900, "height": 600})
    page = await context.new_page()
    console: list[str] = []
    requested: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    page.on("request", lambda request: requested.append(request.url))
    yield page, console, requested
    await context.close()


async def open_page(page: Page, origin: str, api: str, token: str = "") -> None:
    query = urlencode({"api": api, "token": token} if token else {"api": api})
    await page.goto(f"{origin}/index.html?{query}")
    await expect(page.locator("body[data-done=true]")).to_be_attached()


async def test_providers_read_totals_across_origins(
    app: FastAPI,
    live_url: str,
    pages: Pages,
    page: tuple[Page, list[str], list[str]],
    artifacts: Path,
) -> None:
    browser_page, console, requested = page
    async with AsyncClient(base_url=live_url) as http:
        factory = UserFactory(app, http)
        alice = await factory.create(full_name="Alice Author")
        bob = await factory.create(full_name="Bob Builder")
        titles = {}
        for user, title, published in (
            (alice, "First post", True),
            (alice, "Second post", True),
            (alice, "Alice's draft", False),
            (bob, "Bob's post", True),
        ):
            body = {"title": title, "published": published}
            response = await http.post("/api/v1/posts", json=body, headers=user.headers)
            assert response.status_code == 201, response.text
            titles[title] = response.json()["id"]

    first_two = [f"#{titles['First post']} First post", f"#{titles['Second post']} Second post"]

    # Alice, from the allowed origin: her draft counts (4), two rows per page.
    await open_page(browser_page, pages.allowed, live_url, alice.access_token)
    for dialect in DIALECTS:
        section = browser_page.locator(f"section#{dialect}")
        await expect(section).to_contain_text("Total: 4")  # else it shows the provider's error
        await expect(section.locator(".error")).to_have_count(0)
        await expect(section.locator(".total")).to_have_text("4")
        await expect(section.locator("li.row")).to_have_text(first_two)
    await browser_page.screenshot(path=artifacts / "frontend-cors-allowed.png")

    # Anonymous, same origin: published posts only.
    await open_page(browser_page, pages.allowed, live_url)
    for dialect in DIALECTS:
        await expect(browser_page.locator(f"section#{dialect} .total")).to_have_text("3")

    # The same page from an origin the API does not allow: the browser withholds every answer.
    console.clear()
    await open_page(browser_page, pages.foreign, live_url, alice.access_token)
    for dialect in DIALECTS:
        section = browser_page.locator(f"section#{dialect}")
        await expect(section.locator(".error")).to_have_text("Failed to fetch")
        await expect(section.locator(".total")).to_have_count(0)
        await expect(section.locator("li.row")).to_have_count(0)
    blocked = [text for text in console if "blocked by CORS policy" in text]
    assert len(blocked) == 2, console
    assert all(f"from origin '{pages.foreign}'" in text for text in blocked), blocked
    await browser_page.screenshot(path=artifacts / "frontend-cors-refused.png")
    # Nothing but the two page servers and the API.
    assert all(url.startswith((pages.allowed, pages.foreign, live_url)) for url in requested)
