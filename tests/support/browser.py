"""Headless Chromium for the report tests: one browser per test session, pages opened from files.

Debian's ``chromium`` and ``chromium-driver`` packages are used as installed (``.ci/run`` installs them);
``Service(CHROMEDRIVER)`` names the driver so Selenium Manager never downloads a browser or driver.
Background networking, component updates, sync and QUIC are off, and every network request a page
makes is read back from Chrome's performance log (``Network.requestWillBeSent``), so a test can assert
that nothing left the machine. A missing browser fails the tests with the command that installs it.
"""

from __future__ import annotations

import io
import json
import shutil
import tempfile
from pathlib import Path
from typing import NamedTuple

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
INSTALL = "apt-get update && apt-get install -y --no-install-recommends chromium chromium-driver"
WIDTH, HEIGHT = 1400, 1000
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-dev-shm-usage",
    f"--window-size={WIDTH},{HEIGHT}",
]
#: URL schemes a page may load from: its own files and inline data.
LOCAL_SCHEMES = ("file:", "data:")


class Opened(NamedTuple):
    """What opening a page gave: the viewport screenshot (PNG bytes), the DOM after load, every request URL."""

    png: bytes
    dom: str
    requests: list[str]


class Browser:
    """A headless Chromium that opens local files and records the requests each page makes."""

    def __init__(self, driver) -> None:
        self.driver = driver

    def open_page(self, path: str | Path) -> Opened:
        """Load a file, wait for its load event, and return its screenshot, DOM and requests."""
        self.driver.get_log("performance")  # drop the previous page's entries
        self.driver.get(Path(path).resolve().as_uri())
        png = self.driver.get_screenshot_as_png()
        dom = self.driver.page_source
        return Opened(png, dom, self.requests())

    def requests(self) -> list[str]:
        """Every URL requested since the last call (Network.requestWillBeSent in the performance log)."""
        urls = []
        for entry in self.driver.get_log("performance"):
            msg = json.loads(entry["message"])["message"]
            if msg.get("method") == "Network.requestWillBeSent":
                urls.append(msg["params"]["request"]["url"])
        return urls

    def alert_text(self) -> str | None:
        """The text of an open JavaScript alert, or None when there is none."""
        from selenium.common.exceptions import NoAlertPresentException

        try:
            return self.driver.switch_to.alert.text
        except NoAlertPresentException:
            return None


def require_chromium() -> None:
    """Fail (never skip) when the browser or its driver is missing: CI installs both."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.fail(
            f"{', '.join(missing)} missing: the report tests need Debian's Chromium; install it with: {INSTALL}"
        )


@pytest.fixture(scope="session", name="browser")
def chromium():
    """One headless Chromium for the whole test session (fresh profile, no network services)."""
    require_chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="riskon-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in [*ARGS, f"--user-data-dir={profile}"]:
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    options.set_capability("unhandledPromptBehavior", "ignore")  # an alert stays open for the test to see
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    driver.get("about:blank")  # leave the start page (its internal chrome:// loads) before any test looks
    driver.get_log("performance")
    try:
        yield Browser(driver)
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def remote(requests: list[str]) -> list[str]:
    """The requests that went anywhere but a local file or inline data."""
    return [u for u in requests if not u.startswith(LOCAL_SCHEMES)]


def colours(png: bytes) -> tuple[int, float]:
    """Distinct colours in a screenshot and the share of its pixels that are not (near) white."""
    from PIL import Image

    img = Image.open(io.BytesIO(png)).convert("RGB")
    distinct = len(img.getcolors(maxcolors=1 << 24) or [])
    grey = img.convert("L")
    hist = grey.histogram()
    non_white = sum(hist[:245]) / (img.width * img.height)
    return distinct, non_white
