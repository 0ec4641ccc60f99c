"""Pages opened in headless Chromium (Debian's `chromium`, driven by Playwright), served by a
live uvicorn on a free port over the suite's test database.

Without Chromium these tests skip, except under REQUIRE_BROWSER_TESTS=1 (CI), where they fail.
Screenshots go to $TEST_ARTIFACTS (default `test-artifacts/`).
"""

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, Route, async_playwright

from app.main import create_app
from tests.conftest import ROOT
from tests.deploy.services import serving_in_thread

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
# Headless, and nothing of Chromium's own calls home: the machine has no network anyway.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def artifacts() -> Path:
    path = Path(os.environ.get("TEST_ARTIFACTS", ROOT / "test-artifacts"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def chromium() -> Path:
    if not CHROMIUM.exists():
        if os.environ.get("REQUIRE_BROWSER_TESTS") == "1":
            pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    return CHROMIUM


@pytest.fixture(scope="session")
async def browser(chromium: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


@pytest.fixture(scope="module")
def live_url() -> Iterator[str]:
    """The app served by uvicorn in a thread, lifespan on."""
    with serving_in_thread(create_app()) as url:
        yield url


@pytest.fixture
def offsite() -> list[str]:
    """The URLs a page asked for anywhere but the app (refused): the pages must need none."""
    return []


@pytest.fixture
async def page(browser: Browser, live_url: str, offsite: list[str]) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})

    async def only_the_app(route: Route) -> None:
        if route.request.url.startswith(live_url):
            await route.continue_()
        else:
            offsite.append(route.request.url)
            await route.abort()

    await context.route("**/*", only_the_app)
    yield await context.new_page()
    await context.close()
