"""The whole install flow in a real browser (headless Debian chromium driven by selenium): sign-in
through the IMS stand-in, account and workspace choice, install fields, install; then Frame.io's
view (the API stand-in) and signed deliveries handled by a real worker (issue 13, acceptance 1).

Issue 25, item 6, on the same flow: the branding is applied (computed styles), every page names the
account, workspace and signed-in user, a reload after install does not install again, uninstall
needs a confirmation the server checks, and no page scrolls sideways at 390 px. Each page is saved
as a full-page screenshot, desktop and 390 px wide, to FRAMEIO_KIT_SCREENSHOTS_DIR (default: the
test's tmp_path/screenshots) for a person to look at.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import os
import shutil
import ssl
import struct
import threading
import zlib
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.frameio_standin import FrameioStandIn
from tests.helpers import Service, post_signed, wait_until
from tests.ims_standin import ImsServer
from tests.install_support import INSTALL_APP, Ingress, action, install_env, webhook

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
DESKTOP = {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False}
PHONE = {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True}
SCREENSHOTS_DIR = os.environ.get("FRAMEIO_KIT_SCREENSHOTS_DIR")
"""Read at import: the autouse settings fixture clears FRAMEIO_KIT_* from the environment of each test."""
PRIMARY, ACCENT = "rgb(11, 92, 75)", "rgb(242, 165, 65)"
"""tests/apps/install.py's primary_color #0b5c4b and accent_color #f2a541, as computed styles."""

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
        "--hide-scrollbars",
        "--ignore-certificate-errors",  # the logo's local https server has a self-signed certificate
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=DriverService(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    driver.implicitly_wait(20)  # elements of the page a click leads to: polled for, up to 20 s
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", DESKTOP)
    yield driver
    driver.quit()


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    directory = Path(SCREENSHOTS_DIR) if SCREENSHOTS_DIR else tmp_path / "screenshots"
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def _logo_png(size: int = 96) -> bytes:
    """A small logo (an orange rounded square with a white play mark), encoded by hand as a PNG."""
    rows = []
    for y in range(size):
        row = bytearray(b"\x00")  # filter: none
        for x in range(size):
            cx, cy, r = min(max(x, 16), size - 17), min(max(y, 16), size - 17), 16
            inside = (x - cx) ** 2 + (y - cy) ** 2 <= r * r
            play = 34 <= x <= 70 and abs(y - size / 2) <= (x - 34) * -0.55 + 20
            row += bytes((255, 255, 255, 255) if inside and play else (242, 165, 65, 255) if inside else (0, 0, 0, 0))
        rows.append(bytes(row))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"".join(rows)))
        + chunk(b"IEND", b"")
    )


@pytest.fixture
def logo(tmp_path: Path) -> Iterator[tuple[str, list[str]]]:
    """An https server on 127.0.0.1 (self-signed) serving /brand/logo.png: the URL, and the paths asked for."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(key, hashes.SHA256())
    )
    (tmp_path / "logo-cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "logo-key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    png, asked = _logo_png(), []

    class Logo(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            found = self.path == "/brand/logo.png"
            self.send_response(200 if found else 404)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(png) if found else 0))
            self.end_headers()
            if found:
                self.wfile.write(png)

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Logo)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(tmp_path / "logo-cert.pem", tmp_path / "logo-key.pem")
    server.socket = tls.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"https://127.0.0.1:{server.server_address[1]}/brand/logo.png", asked
    server.shutdown()
    server.server_close()


def _shows(browser: Any, element_id: str, text: str) -> None:
    """Wait until the page a click led to shows `text` in `element_id` (a slow POST, such as the
    install's API calls, may still be loading, and the page before it may have the same id)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.wait import WebDriverWait

    WebDriverWait(browser, 30).until(expected_conditions.text_to_be_present_in_element((By.ID, element_id), text))
    assert browser.find_element(By.ID, element_id).text == text


def _text(browser: Any, element_id: str) -> str:
    from selenium.webdriver.common.by import By

    return str(browser.find_element(By.ID, element_id).text)


def _absent(browser: Any, element_id: str) -> bool:
    from selenium.webdriver.common.by import By

    browser.implicitly_wait(0)
    try:
        return not browser.find_elements(By.ID, element_id)
    finally:
        browser.implicitly_wait(20)


def _click(browser: Any, element_id: str) -> None:
    from selenium.webdriver.common.by import By

    browser.find_element(By.ID, element_id).click()


def _click_link(browser: Any, text: str) -> None:
    from selenium.webdriver.common.by import By

    browser.find_element(By.LINK_TEXT, text).click()


def _style(browser: Any, selector: str, prop: str) -> str:
    return str(browser.execute_script(f"return getComputedStyle(document.querySelector({selector!r})).{prop}"))


def _capture(browser: Any, path: Path) -> None:
    """The whole page, not only the viewport (Chrome DevTools' captureBeyondViewport)."""
    width, height = browser.execute_script(
        "const r = document.documentElement.getBoundingClientRect(); return [window.innerWidth, Math.ceil(r.height)]"
    )
    clip = {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}
    shot = browser.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
    )
    path.write_bytes(base64.b64decode(shot["data"]))


_OVERFLOW = """
const width = window.innerWidth;
const wide = document.documentElement.scrollWidth;
const controls = [...document.querySelectorAll('input:not([type=hidden]),select,textarea,button,.btn')]
  .filter(el => { const form = el.closest('.card,form,header,.who');
                  return form && el.getBoundingClientRect().right > form.getBoundingClientRect().right + 0.5; })
  .map(el => el.id || el.name || el.tagName);
return {width: width, scrollWidth: wide, outside: controls};
"""


def _snap(browser: Any, directory: Path, name: str) -> None:
    """Desktop and 390 px screenshots of the current page; at both widths nothing scrolls sideways
    and every control fits inside its card or form."""
    for label, metrics in (("desktop", DESKTOP), ("390", PHONE)):
        browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
        found = browser.execute_script(_OVERFLOW)
        assert found["width"] == metrics["width"], found
        assert found["scrollWidth"] <= found["width"], f"{name} scrolls sideways at {label}: {found}"
        assert found["outside"] == [], f"{name} at {label}: controls wider than their column: {found}"
        _capture(browser, directory / f"install-{name}-{label}.png")
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", DESKTOP)


def _context(browser: Any) -> tuple[str, str, str]:
    """What the page says it is about: account, workspace, who is signed in."""
    return _text(browser, "context-account"), _text(browser, "context-workspace"), _text(browser, "who")


def _creates(standin: FrameioStandIn) -> tuple[int, int]:
    return standin.calls["create webhook"], standin.calls["create action"]


def test_an_admin_installs_in_a_browser_and_events_are_verified_and_handled_with_the_install_config(
    api: tuple[ImsServer, FrameioStandIn],
    ingress: Ingress,
    browser: Any,
    start_worker: Callable[..., Service],
    base_env: dict[str, str],
    records: Callable[[str], list[dict[str, Any]]],
    screenshots: Path,
    logo: tuple[str, list[str]],
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.select import Select

    standin = api[1]
    logo_url, logo_requests = logo
    ingress.start(TEST_LOGO_URL=logo_url)
    env = install_env(base_env, api[0].standin.url, ingress.url)
    start_worker(INSTALL_APP, extra_env={k: v for k, v in env.items() if k not in base_env}, concurrency=2)

    # Landing: the branding, applied; nobody signed in yet.
    browser.get(f"{ingress.url}/install")
    assert "Review Bot" in browser.title
    assert (_text(browser, "app-name"), _text(browser, "app-description")) == ("Review Bot", "Posts review summaries.")
    assert _style(browser, "header.top", "backgroundColor") == PRIMARY
    assert _style(browser, "header.top", "borderTopColor") == ACCENT
    assert _style(browser, "#sign-in", "backgroundColor") == PRIMARY
    assert _style(browser, "#sign-in", "color") == "rgb(255, 255, 255)"  # white reads best on the dark green
    assert _style(browser, "#powered-by", "fontStyle") == "italic"  # custom_css applies after the kit's CSS
    # The logo loads (the policy allows exactly its https URL) and is drawn at header size.
    assert browser.execute_script(
        "const i = document.querySelector('.brand img'); return [i.complete, i.naturalWidth]"
    ) == [True, 96]
    assert logo_requests == ["/brand/logo.png"]
    assert _style(browser, ".brand img", "height") == "44px"
    assert _context(browser) == ("not chosen yet", "not chosen yet", "Not signed in")
    _snap(browser, screenshots, "landing")

    _click(browser, "sign-in")  # -> IMS stand-in -> /install/callback -> /install
    _shows(browser, "title", "Choose an account")
    assert _context(browser) == (
        "not chosen yet",
        "not chosen yet",
        "Signed in as admin-1\nadmin-1@example.test\nSign out",
    )
    _snap(browser, screenshots, "accounts")

    _click_link(browser, "Account acc-A")
    _shows(browser, "title", "Choose a workspace")
    assert _context(browser)[:2] == ("Account acc-A", "not chosen yet")
    assert browser.find_element(By.ID, "back").get_attribute("href") == f"{ingress.url}/install"
    _snap(browser, screenshots, "workspaces")

    _click_link(browser, "Workspace ws-1")
    _shows(browser, "title", "Install into workspace")
    assert _context(browser)[:2] == ("Account acc-A", "Workspace ws-1")
    assert "admin-1" in _context(browser)[2] and browser.find_element(By.ID, "sign-out").is_displayed()
    _snap(browser, screenshots, "install-form")

    # The server refuses a blank (whitespace) API key: the form comes back with what was typed,
    # except the secret, and nothing was created.
    browser.find_element(By.ID, "field-api_key").send_keys("   ")
    Select(browser.find_element(By.ID, "field-region")).select_by_value("us")
    browser.find_element(By.ID, "field-channel").send_keys("#typed-channel")
    _click(browser, "install")
    _shows(browser, "error-api_key", "'API key' is required.")
    assert browser.find_element(By.ID, "message").get_attribute("role") == "alert"
    assert browser.find_element(By.ID, "field-channel").get_attribute("value") == "#typed-channel"
    assert Select(browser.find_element(By.ID, "field-region")).first_selected_option.text == "us"
    assert browser.find_element(By.ID, "field-api_key").get_attribute("value") == ""
    assert browser.find_element(By.ID, "field-api_key").get_attribute("aria-invalid") == "true"
    assert _creates(standin) == (0, 0)
    _snap(browser, screenshots, "form-error")

    browser.find_element(By.ID, "field-api_key").send_keys("browser-api-key")
    _click(browser, "install")
    _shows(browser, "message", "Installed.")
    assert browser.find_element(By.ID, "message").get_attribute("role") == "status"
    assert browser.find_element(By.ID, "installed").is_displayed()
    assert browser.current_url.startswith(f"{ingress.url}/install/status?")  # a GET page: the POST redirected
    assert _creates(standin) == (1, 1)
    _snap(browser, screenshots, "installed")

    browser.refresh()  # reloads the page the POST redirected to: no second install
    _shows(browser, "title", "Installed")
    assert _creates(standin) == (1, 1)
    assert _absent(browser, "message"), "the notice is shown once"

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

    # Uninstall asks first; the server refuses an unticked confirmation even when the browser's own
    # check is taken away, and the install stays.
    _click(browser, "uninstall")
    _shows(browser, "title", "Uninstall from workspace")
    assert _context(browser)[:2] == ("Account acc-A", "Workspace ws-1")
    assert standin.in_workspace("webhook", "acc-A", "ws-1") == [hook]
    _snap(browser, screenshots, "confirm-uninstall")
    browser.execute_script("document.getElementById('confirm').removeAttribute('required')")
    _click(browser, "confirm-uninstall")
    _shows(browser, "message", "Tick the box to confirm. Nothing was removed.")
    assert browser.find_element(By.ID, "message").get_attribute("role") == "alert"
    assert standin.in_workspace("webhook", "acc-A", "ws-1") == [hook]
    assert summarize["id"] in standin.actions

    _click(browser, "confirm")
    _click(browser, "confirm-uninstall")
    _shows(browser, "message", "Uninstalled.")
    _shows(browser, "title", "Install into workspace")
    assert standin.in_workspace("webhook", "acc-A", "ws-1") == []
    assert standin.in_workspace("action", "acc-A", "ws-1") == []
    _snap(browser, screenshots, "uninstalled")

    # An error page keeps the frame: who is signed in, a way back, the branding.
    browser.get(f"{ingress.url}/install/status?account_id=acc-C&workspace_id=ws-5")
    _shows(browser, "title", "Not allowed")
    assert browser.find_element(By.ID, "message").get_attribute("role") == "alert"
    assert "admin-1" in _context(browser)[2]
    assert browser.find_element(By.ID, "back").is_displayed()
    assert _style(browser, "header.top", "backgroundColor") == PRIMARY
    _snap(browser, screenshots, "error")

    _click(browser, "sign-out")
    _shows(browser, "message", "You are signed out.")
    assert _context(browser)[2] == "Not signed in"
    _snap(browser, screenshots, "signed-out")
    browser.get(f"{ingress.url}/install/status?account_id=acc-A&workspace_id=ws-1")
    _shows(browser, "title", "Signed out")  # the session is gone on the server, not only in the browser
