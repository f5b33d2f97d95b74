"""A small page-object harness over the real Airflow 3 UI in headless Chromium (Selenium).

Debian's ``chromium`` and ``chromium-driver`` (installed by ``scripts/install_browser.sh``, which
``make test`` runs); ``OGIRI_CHROMIUM`` / ``OGIRI_CHROMEDRIVER`` point elsewhere. Selectors use
what a user sees (button text, ``aria-label``, field names) rather than generated CSS classes.
Shared by every browser test: the first-steps test and the plugin-page tests.
"""

from __future__ import annotations

import os
import time
import urllib.parse
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TypeVar

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement

T = TypeVar("T")

CHROMIUM = os.environ.get("OGIRI_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("OGIRI_CHROMEDRIVER", "/usr/bin/chromedriver")
INSTALL_HINT = "run `bash scripts/install_browser.sh` (make test does) or set OGIRI_CHROMIUM/OGIRI_CHROMEDRIVER"


def start_chromium(download_dir: Path | None = None) -> webdriver.Chrome:
    """Headless Chromium through the distribution's ChromeDriver (never Selenium Manager's download)."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if missing:
        raise RuntimeError(f"no browser for the UI tests ({', '.join(missing)} missing): {INSTALL_HINT}")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1000", "--no-first-run", "--disable-extensions"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)


def wait_for(fn: Callable[[], T | None], timeout: float, what: str, interval: float = 0.5) -> T:
    """Poll ``fn`` until it returns something truthy; tolerate re-rendered (stale) elements."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = fn()
            if value:
                return value
        except (StaleElementReferenceException, WebDriverException) as exc:
            last = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}" + (f" (last error: {last})" if last else ""))


class AirflowUI:
    """The Airflow UI at ``base_url`` as one logged-in user sees it."""

    def __init__(self, driver: webdriver.Chrome, base_url: str, artifacts: Path | None = None):
        self.driver = driver
        self.base_url = base_url.rstrip("/")
        self.artifacts = artifacts

    # -- navigation ----------------------------------------------------------------------------
    def open(self, path: str) -> None:
        """Load ``path`` (relative to the UI's base URL)."""
        self.driver.get(self.base_url + path)

    def login(self, username: str, password: str) -> None:
        """Log in through the auth manager's own login form."""
        self.open("/")
        user = wait_for(lambda: self._input("username"), 30, "the login form")
        user.send_keys(username)
        self._input("password").send_keys(password)
        self.driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        wait_for(lambda: "/auth/login" not in self.driver.current_url, 30, "the login to complete")
        # Before login the UI asks for /ui/config and gets a 401: Airflow's own, not the page's fault.
        self.console_errors()

    def screenshot(self, name: str) -> Path | None:
        """Save a PNG under the artifacts folder (for a human reading a failure)."""
        if self.artifacts is None:
            return None
        self.artifacts.mkdir(parents=True, exist_ok=True)
        path = self.artifacts / f"{name}.png"
        self.driver.save_screenshot(str(path))
        return path

    def console_errors(self) -> list[str]:
        """Severe browser-console entries since the last call."""
        return [e["message"] for e in self.driver.get_log("browser") if e.get("level") == "SEVERE"]

    # -- elements ------------------------------------------------------------------------------
    def _input(self, name: str) -> WebElement | None:
        found = self.driver.find_elements(By.CSS_SELECTOR, f"input[name='{name}']")
        return found[0] if found else None

    def button(self, text: str, *, within: WebElement | None = None) -> WebElement | None:
        """The last visible button whose text is ``text`` (dialogs render above the page)."""
        root = within or self.driver
        matches = [b for b in root.find_elements(By.TAG_NAME, "button") if b.text.strip() == text and b.is_displayed()]
        return matches[-1] if matches else None

    def dialog(self, title_prefix: str) -> WebElement | None:
        """The open dialog whose text starts with ``title_prefix``."""
        for el in self.driver.find_elements(By.CSS_SELECTOR, "[role=dialog]"):
            if el.is_displayed() and el.text.startswith(title_prefix):
                return el
        return None

    def body_text(self) -> str:
        """Everything the page shows as text."""
        return self.driver.find_element(By.TAG_NAME, "body").text

    # -- the trigger dialog ----------------------------------------------------------------------
    def open_trigger_dialog(self, dag_id: str) -> WebElement:
        """The DAG page's Trigger dialog, open."""
        self.open(f"/dags/{dag_id}")
        trigger = wait_for(
            lambda: self.driver.find_elements(By.CSS_SELECTOR, "button[aria-label='Trigger Dag']"), 60, "the Trigger button"
        )[0]
        trigger.click()
        return wait_for(lambda: self.dialog("Trigger Dag"), 30, "the trigger dialog")

    def choose_backfill(self) -> WebElement:
        """Switch the open trigger dialog to its Backfill mode."""
        self.driver.find_element(By.XPATH, "//*[normalize-space(text())='Backfill']").click()
        return wait_for(lambda: self.dialog("Run Backfill"), 30, "the backfill dialog")

    def set_datetime(self, index: int, when: datetime) -> str:
        """Set the ``index``-th date-time picker of the page (UTC) to ``when``; returns what it shows."""
        day, hhmm = when.strftime("%Y/%m/%d"), when.strftime("%H:%M")
        shown = f"{when:%b} {when.day:02d}, {when.year} {hhmm}"
        picker = self.driver.find_elements(By.CSS_SELECTOR, "[data-testid=datetime-input]")[index]
        picker.click()
        popover = wait_for(
            lambda: self.driver.find_elements(By.CSS_SELECTOR, "[data-scope=popover][data-part=content][data-state=open]"),
            10,
            "the date-time popover",
        )[-1]
        date_input, time_input = popover.find_elements(By.CSS_SELECTOR, "input")[:2]
        for field, value in ((date_input, day), (time_input, hhmm)):
            field.send_keys(Keys.CONTROL, "a")
            field.send_keys(value)
        time_input.send_keys(Keys.ENTER)
        self.driver.find_element(By.TAG_NAME, "body").send_keys(Keys.ESCAPE)
        return wait_for(lambda: picker.text if picker.text.strip() == shown else None, 10, f"the picker to show {shown}")

    def submit(self, dialog: WebElement, label: str) -> None:
        """Click the dialog's ``label`` button once it is enabled."""
        button = wait_for(
            lambda: (b := self.button(label, within=dialog)) is not None and b.is_enabled() and b, 30, f"{label!r} enabled"
        )
        button.click()

    # -- task logs -------------------------------------------------------------------------------
    def task_page(self, dag_id: str, run_id: str, task_id: str, map_index: int | None = None) -> None:
        """Open a task instance's page (its log is the default tab); ``map_index`` for a mapped task."""
        path = f"/dags/{dag_id}/runs/{urllib.parse.quote(run_id, safe='')}/tasks/{task_id}"
        self.open(path if map_index is None else f"{path}/mapped/{map_index}")
