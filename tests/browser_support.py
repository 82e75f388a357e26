"""A headless Chromium page that may load only ``file://`` URLs (every other request refused), for
the browser tests of the offline HTML report and its sections (marker ``browser``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def offline_page(chromium: Path, errors: list[str], requests: list[str]) -> Iterator[Any]:
    """A 1280x900 page of ``chromium`` (headless, no sandbox) whose requests other than ``file://``
    are aborted; console errors and page errors are appended to ``errors``, every requested URL to
    ``requests``. The browser is closed on exit."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(chromium), args=["--no-sandbox", "--headless=new"])
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            context.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file://") else route.abort())
            page = context.new_page()
            page.on("console", lambda msg: errors.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None)
            page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
            page.on("request", lambda req: requests.append(req.url))
            yield page
        finally:
            browser.close()
