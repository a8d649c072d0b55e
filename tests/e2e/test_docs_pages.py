"""``/docs`` (Swagger UI) and ``/redoc`` render the API's operations in a real headless
browser with no network beyond 127.0.0.1: their assets come from the package, not a CDN.

The browser comes from ``scripts/browser-env.sh``, as in ``test_labelling_page.py``. Every
host name but the server's resolves to nothing (``--host-resolver-rules``), as on a machine
without internet, and the browser's network log shows every request the pages sent: all to
the server (ReDoc's footer logo on its CDN is blocked in the browser by the page's CSP).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait
from test_labelling_page import browser_paths  # noqa: F401  (a fixture)

from conftest import ServerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

WAIT = 30


@pytest.fixture
def offline_browser(browser_paths: dict[str, str], tmp_path: Path) -> Iterator[WebDriver]:  # noqa: F811
    options = webdriver.ChromeOptions()
    options.binary_location = browser_paths["CHROMIUM"]
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1200,1000",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        # no internet: every name fails to resolve; 127.0.0.1 is an address, not a name
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        "--no-proxy-server",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    service = Service(
        executable_path=browser_paths["CHROMEDRIVER"],
        log_output=str(tmp_path / "chromedriver.log"),
    )
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(WAIT)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def docs_server(tmp_path: Path) -> Iterator[ServerProcess]:
    s = ServerProcess(tmp_path / "data", workers=0)
    yield s
    s.stop()


def sent_requests(driver: WebDriver) -> list[str]:
    """The URLs of the requests the browser sent since the last call (DevTools' network
    log) over the network (http, https, ws, wss), less those it blocked itself (CSP)."""
    urls: dict[str, str] = {}
    blocked: set[str] = set()
    for entry in driver.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        params = msg.get("params", {})
        if msg["method"] == "Network.requestWillBeSent":
            urls[params["requestId"]] = params["request"]["url"]
        elif msg["method"] == "Network.loadingFailed" and params.get("blockedReason"):
            blocked.add(params["requestId"])
    return [
        url
        for rid, url in urls.items()
        if rid not in blocked and url.startswith(("http:", "https:", "ws:", "wss:"))
    ]


def test_swagger_ui_and_redoc_render_the_operations_offline(
    docs_server: ServerProcess, offline_browser: WebDriver, tmp_path: Path
) -> None:
    origin = docs_server.url
    page = httpx.get(f"{origin}/docs", timeout=10).text
    assert "cdn" not in page.lower() and "https://" not in page, page

    offline_browser.get(f"{origin}/docs")
    WebDriverWait(offline_browser, WAIT).until(
        lambda d: len(d.find_elements(By.CSS_SELECTOR, ".opblock")) > 20
    )
    paths = {
        e.get_attribute("data-path")
        for e in offline_browser.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")
    }
    assert {"/v1/health", "/v1/datasets", "/v1/jobs"} <= paths, paths
    offline_browser.save_screenshot(str(tmp_path / "docs.png"))
    swagger_urls = sent_requests(offline_browser)
    assert f"{origin}/docs-assets/swagger-ui-bundle.js" in swagger_urls

    offline_browser.get(f"{origin}/redoc")
    WebDriverWait(offline_browser, WAIT).until(
        lambda d: len(d.find_elements(By.CSS_SELECTOR, "[data-section-id^='operation/']")) > 20
    )
    assert "/v1/datasets" in offline_browser.find_element(By.TAG_NAME, "body").text
    offline_browser.save_screenshot(str(tmp_path / "redoc.png"))

    redoc_urls = sent_requests(offline_browser)
    assert f"{origin}/docs-assets/redoc.standalone.js" in redoc_urls
    for url in swagger_urls + redoc_urls:
        assert url.startswith(origin + "/"), f"{url} left 127.0.0.1"
