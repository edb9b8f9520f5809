"""A real Chromium driven by Playwright, for the dashboard tests. Debian's chromium is used
(no browser download at test time); where it or Playwright is missing the tests are skipped."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import ADMIN_PASSWORD, ADMIN_USER

TIMEOUT_MS = 45_000  # the slowest thing a page waits for is a subcloud's audit or a migration


def chromium_path() -> str | None:
    for candidate in (os.environ.get("DCMAN_CHROMIUM"), shutil.which("chromium"), "/usr/bin/chromium"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("Playwright is not installed (pip install -e '.[test]'); browser tests skipped")
    path = chromium_path()
    if path is None:
        pytest.skip("no Chromium found (apt-get install chromium, or set DCMAN_CHROMIUM); browser tests skipped")
    with sync_playwright() as playwright:
        # --no-sandbox: the tests may run as root, where Chromium's sandbox refuses to start.
        launched = playwright.chromium.launch(executable_path=path, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


def logged_in(browser: Any, site_url: str, user: str = ADMIN_USER, password: str = ADMIN_PASSWORD) -> Any:
    """A new page on the site's dashboard, refreshing every second, logged in as `user`."""
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(TIMEOUT_MS)
    expect.set_options(timeout=TIMEOUT_MS)
    page.goto(site_url + "/ui?refresh=1")
    page.get_by_label("User", exact=True).fill(user)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#status")).to_contain_text("Updated")
    return page
