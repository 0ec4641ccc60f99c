"""`/docs` and `/redoc` in a real browser, offline: a new user signs up, logs in and pages
through posts from Swagger UI alone (issue 21's "done when")."""

from pathlib import Path

from playwright.async_api import Locator, Page, expect

from app.core.openapi import TITLE


async def operation(page: Page, tag: str, operation_id: str) -> Locator:
    """One operation of Swagger UI, opened and switched to "Try it out"."""
    block = page.locator(f"#operations-{tag}-{operation_id}")
    await block.locator(".opblock-summary").first.click()
    await block.locator("button.try-out__btn").click()
    return block


async def execute(block: Locator) -> Locator:
    """Send the operation as filled in; the live response's status cell."""
    await block.locator("button.execute").click()
    status = block.locator(".live-responses-table tbody .response-col_status").first
    await expect(status).not_to_be_empty()
    return status


async def test_docs_take_a_new_user_from_sign_up_to_a_page_of_posts(
    page: Page, live_url: str, offsite: list[str], artifacts: Path
) -> None:
    await page.goto(f"{live_url}/docs")
    await expect(page.locator(".info .title")).to_contain_text(TITLE)
    description = page.locator(".info .description")
    await expect(description.get_by_role("heading", name="Auth flow")).to_be_visible()
    await expect(description).to_contain_text("POST /api/v1/auth/register")
    await expect(page.locator(".opblock-tag-section h3").first).to_contain_text("posts")
    await page.screenshot(path=artifacts / "docs.png", full_page=False)

    # Sign up with the example body Swagger UI fills in.
    register = await operation(page, "auth", "auth-register")
    await expect(register.locator("textarea.body-param__text")).to_contain_text("ada@example.com")
    await expect(await execute(register)).to_have_text("201")

    # Authorize: the OAuth2 password flow against /api/v1/auth/login.
    await page.locator(".auth-wrapper button.authorize").click()
    dialog = page.locator(".modal-ux")
    await dialog.locator("#oauth_username").fill("ada@example.com")
    await dialog.locator("#oauth_password").fill("correct-horse-battery-staple")
    await dialog.locator(".auth-btn-wrapper button.authorize").click()
    await expect(dialog.get_by_text("Authorized", exact=True)).to_be_visible()
    await dialog.locator("button.btn-done").click()

    # Write a post from its example, then page through posts.
    await expect(await execute(await operation(page, "posts", "posts-create"))).to_have_text("201")
    listing = await operation(page, "posts", "posts-list")
    await expect(await execute(listing)).to_have_text("200")
    body = listing.locator(".live-responses-table tbody .response-col_description").first
    await expect(body).to_contain_text("Shipping our first release")
    await expect(body).to_contain_text('"total": 1')
    await listing.screenshot(path=artifacts / "docs-posts-list.png")
    assert offsite == []


async def test_redoc_renders_the_description_offline(
    page: Page, live_url: str, offsite: list[str], artifacts: Path
) -> None:
    await page.goto(f"{live_url}/redoc")
    await expect(page.get_by_role("heading", name="Auth flow")).to_be_visible(timeout=30_000)
    await expect(page.locator("h1").first).to_contain_text(TITLE)
    await expect(page.get_by_text("List the comments of a post").first).to_be_attached()
    await page.screenshot(path=artifacts / "redoc.png")
    assert offsite == []
