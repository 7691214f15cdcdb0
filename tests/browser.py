"""Headless Chromium (Debian's) driven by Playwright, for the dashboard and report tests."""
from __future__ import annotations

import os
import shutil
from contextlib import contextmanager

import pytest

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic"]


def chromium_path() -> str:
    path = os.environ.get("QPO_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        if os.environ.get("QPO_REQUIRE_BROWSER"):
            pytest.fail("QPO_REQUIRE_BROWSER is set but no chromium was found (apt-get install chromium)")
        pytest.skip("no chromium on this machine: `apt-get install chromium` (CI installs it)")
    return path


@contextmanager
def browser_page(**kwargs):
    from playwright.sync_api import sync_playwright

    exe = chromium_path()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 2000}, **kwargs)
            yield page
        finally:
            browser.close()


TRACES_JS = """() => [...document.querySelectorAll('.js-plotly-plot')].map(e => ({
    title: (e.querySelector('.gtitle') || {}).textContent || '',
    lines: [...e.querySelectorAll('.scatterlayer path.js-line')].map(p => p.getAttribute('d') || ''),
    bars: e.querySelectorAll('.bars path').length}))"""


def sign_in(page, base_url: str, email: str, password: str, *, timeout: float = 180_000) -> None:
    """Sign in on the dashboard's login page as a person would (the form), landing on the dashboard."""
    page.goto(base_url + "login", timeout=timeout)
    page.fill("#email", email)
    page.fill("#password", password)
    page.click("#login_submit")
