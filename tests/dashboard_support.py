"""A real daemon serving its dashboard on a free loopback port, and a headless Chromium to look at it."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import REPO, Home, free_port, wait_for
from tests.test_crash import DEADLINE, Daemon, finished

CHROMIUM = Path("/usr/bin/chromium")
# As the brief of the project says: Debian's Chromium, never a downloaded browser.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]  # fmt: skip
GALLERY = REPO / "docs" / "gallery"


def serve(home: Home, **env: str) -> tuple[Daemon, str]:
    """`gristmill run` with the dashboard on a free port; returns the daemon and the page's base URL."""
    port = free_port()
    daemon = Daemon(home, GRISTMILL_HTTP=f"127.0.0.1:{port}", **env).start()
    base = f"http://127.0.0.1:{port}"
    wait_for(lambda: _answers(base), timeout=DEADLINE, what="the dashboard to answer")
    return daemon, base


def _answers(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=2).status_code in (200, 503)
    except httpx.HTTPError:
        return False


def wait_finished(home: Home, count: int) -> None:
    wait_for(lambda: finished(home, count), timeout=DEADLINE, what=f"{count} finished runs")


@contextlib.contextmanager
def chromium() -> Iterator[object]:
    """A headless Debian Chromium driven by Playwright; the test fails where there is none (a skip would hide it)."""
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is not installed: apt-get install chromium (.ci/run does)", pytrace=False)
    from playwright import sync_api  # in the test extra

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def gallery_dir(tmp: Path) -> Path:
    """Where screenshots go: docs/gallery when GRISTMILL_UPDATE_GALLERY=1, else a temporary folder."""
    folder = GALLERY if os.environ.get("GRISTMILL_UPDATE_GALLERY") == "1" else tmp
    folder.mkdir(parents=True, exist_ok=True)
    return folder
