"""The whole install flow in a real browser (headless Debian chromium driven by selenium): sign-in
through the IMS stand-in, account and workspace choice, install fields, install; then Frame.io's
view (the API stand-in) and signed deliveries handled by a real worker (issue 13, acceptance 1)."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.frameio_standin import FrameioStandIn
from tests.helpers import Service, post_signed, wait_until
from tests.ims_standin import ImsServer
from tests.install_support import INSTALL_APP, Ingress, action, install_env, webhook

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        shutil.which(CHROMIUM) is None or shutil.which(CHROMEDRIVER) is None,
        reason="needs Debian's chromium and chromium-driver (apt-get install -y chromium chromium-driver)",
    ),
]


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service as DriverService

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=DriverService(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    driver.implicitly_wait(20)  # elements of the page a click leads to: polled for, up to 20 s
    yield driver
    driver.quit()


def _shows(browser: Any, element_id: str, text: str) -> None:
    """Wait until the page a click led to shows `text` in `element_id` (a slow POST, such as the
    install's API calls, may still be loading, and the page before it may have the same id)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.wait import WebDriverWait

    WebDriverWait(browser, 30).until(expected_conditions.text_to_be_present_in_element((By.ID, element_id), text))
    assert browser.find_element(By.ID, element_id).text == text


def _click_link(browser: Any, text: str) -> None:
    from selenium.webdriver.common.by import By

    browser.find_element(By.LINK_TEXT, text).click()


def test_an_admin_installs_in_a_browser_and_events_are_verified_and_handled_with_the_install_config(
    api: tuple[ImsServer, FrameioStandIn],
    ingress: Ingress,
    browser: Any,
    start_worker: Callable[..., Service],
    base_env: dict[str, str],
    records: Callable[[str], list[dict[str, Any]]],
    tmp_path: Path,
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.select import Select

    standin = api[1]
    env = install_env(base_env, api[0].standin.url, ingress.url)
    start_worker(INSTALL_APP, extra_env={k: v for k, v in env.items() if k not in base_env}, concurrency=2)

    browser.get(f"{ingress.url}/install")
    assert "Review Bot" in browser.title
    browser.find_element(By.ID, "sign-in").click()  # -> IMS stand-in -> /install/callback -> /install
    _shows(browser, "title", "Accounts")
    _click_link(browser, "Account acc-A")
    _click_link(browser, "Workspace ws-1")
    _shows(browser, "title", "Install into workspace")
    browser.find_element(By.ID, "field-api_key").send_keys("browser-api-key")
    Select(browser.find_element(By.ID, "field-region")).select_by_value("us")
    browser.find_element(By.ID, "install").click()
    _shows(browser, "message", "Installed.")
    assert browser.find_element(By.ID, "installed").is_displayed()
    browser.save_screenshot(str(tmp_path / "installed.png"))

    (hook,) = standin.in_workspace("webhook", "acc-A", "ws-1")
    assert sorted(hook["events"]) == ["file.created", "file.ready"]
    assert hook["url"] == f"{ingress.url}/"
    (summarize,) = standin.in_workspace("action", "acc-A", "ws-1")
    assert (summarize["event"], summarize["name"]) == ("review.summarize", "Summarize")

    delivered = post_signed(
        f"{ingress.url}/", webhook("acc-A", "ws-1", resource="r-browser"), standin.secrets[hook["id"]]
    )
    assert delivered.status_code == 202
    (seen,) = wait_until(lambda: records("webhook"), timeout=30, what="the worker to handle the webhook")
    assert (seen["resource"], seen["workspace"], seen["region"]) == ("r-browser", "ws-1", "us")
    assert seen["api_key"] == hashlib.sha256(b"browser-api-key").hexdigest()

    answered = post_signed(
        f"{ingress.url}/",
        action("review.summarize", "acc-A", "ws-1", summarize["id"]),
        standin.secrets[summarize["id"]],
    )
    assert answered.status_code == 200
    assert answered.json() == {"title": "Summary", "description": "region=us workspace=ws-1"}
