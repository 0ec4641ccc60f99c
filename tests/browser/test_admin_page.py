"""`/admin` in headless Chromium, against the live app: a normal user is refused, a superuser
lists, searches, edits (the API sees the new ETag), is refused an invalid edit, and deletes a
comment; the pages ask nothing of any host but the app. The post list's screenshot is kept
(`admin-posts.png` in the artifacts folder; docs/admin.png is a copy)."""

import re
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from playwright.async_api import Page, expect

from tests.factories import TestUser, UserFactory

ADMIN_NAME = "Ada Admin"


async def log_in(page: Page, live_url: str, user: TestUser) -> None:
    await page.goto(f"{live_url}/admin/")
    await page.fill("input[name=username]", user.email)
    await page.fill("input[name=password]", user.password)
    await page.click("button[type=submit]")
    await page.wait_for_load_state("networkidle")


async def seed(app: FastAPI, live_url: str) -> tuple[TestUser, TestUser, dict[str, Any]]:
    """A superuser, a normal user with a post (with one comment), and a few more posts."""
    async with httpx.AsyncClient(base_url=live_url) as http:
        users = UserFactory(app, http)
        admin = await users.create(superuser=True, full_name=ADMIN_NAME)
        author = await users.create(full_name="Grace Author")
        created = []
        for title in ("Release notes", "Weekly digest", "Spam, buy now"):
            body = {"title": title, "content": "Text of " + title}
            response = await http.post("/api/v1/posts", json=body, headers=author.headers)
            assert response.status_code == 201, response.text
            created.append(response.json())
        body = {"post_id": created[0]["id"], "body": "First!"}
        comment = await http.post("/api/v1/comments", json=body, headers=author.headers)
        assert comment.status_code == 201, comment.text
    return admin, author, {"post": created[0], "comment": comment.json()}


async def test_admin_for_a_superuser_only(
    app: FastAPI, page: Page, live_url: str, offsite: list[str], artifacts: Path
) -> None:
    admin, author, rows = await seed(app, live_url)
    post, comment = rows["post"], rows["comment"]

    # A normal user gets the login page again, and no data.
    await log_in(page, live_url, author)
    await expect(page.locator("body")).to_contain_text("Only superusers may use the admin")
    await page.goto(f"{live_url}/admin/posts/list")
    assert "/admin/login" in page.url

    # The superuser: the post list, owners by name.
    await log_in(page, live_url, admin)
    await page.goto(f"{live_url}/admin/posts/list")
    table = page.locator("table")
    await expect(table).to_contain_text("Release notes")
    await expect(table).to_contain_text("Grace Author")
    await page.screenshot(path=str(artifacts / "admin-posts.png"), full_page=True)

    # Search: the resource's search fields.
    await page.fill("input[type=search]", "digest")
    await page.keyboard.press("Enter")
    await expect(table).to_contain_text("Weekly digest")
    await expect(table).not_to_contain_text("Release notes")

    # An edit: saved through the post's Update schema, with a new version (ETag).
    async with httpx.AsyncClient(base_url=live_url) as http:
        before = await http.get(f"/api/v1/posts/{post['id']}")
    await page.goto(f"{live_url}/admin/posts/edit?pk={post['id']}")
    await page.fill("input[name=title]", "Release notes, edited")
    await page.get_by_role("button", name="Save", exact=True).click()
    await page.wait_for_load_state("networkidle")
    async with httpx.AsyncClient(base_url=live_url) as http:
        after = await http.get(f"/api/v1/posts/{post['id']}")
    assert after.json()["title"] == "Release notes, edited"
    assert after.headers["ETag"] != before.headers["ETag"]

    # An invalid edit (an empty title) is shown in the form, and saves nothing.
    await page.goto(f"{live_url}/admin/posts/edit?pk={post['id']}")
    await page.fill("input[name=title]", "")
    await page.evaluate("document.querySelector('input[name=title]').removeAttribute('required')")
    await page.get_by_role("button", name="Save", exact=True).click()
    edit_form = page.locator("form[enctype='multipart/form-data']")
    await expect(edit_form.locator(".invalid-feedback")).to_contain_text(
        re.compile("required|at least 1 character")
    )
    async with httpx.AsyncClient(base_url=live_url) as http:
        unchanged = await http.get(f"/api/v1/posts/{post['id']}")
    assert unchanged.headers["ETag"] == after.headers["ETag"]

    # Deleting a comment, after a confirmation.
    await page.goto(f"{live_url}/admin/comments/detail?pk={comment['id']}")
    await page.get_by_text("Delete", exact=True).first.click()
    await page.get_by_role("button", name="Yes, delete", exact=True).click()
    await page.wait_for_url(re.compile(r"/admin/comments/list"))
    async with httpx.AsyncClient(base_url=live_url) as http:
        gone = await http.get(f"/api/v1/comments/{comment['id']}")
    assert gone.status_code == 404

    assert offsite == [], f"the admin asked other hosts: {offsite}"
