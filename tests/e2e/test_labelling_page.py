"""End to end: a worker labels crowd tasks on ``/label`` in a real headless browser.

A real ``taskloom serve`` process; the requester's side goes through the native REST API
(httpx), the worker's side through the page in Debian's Chromium driven by Selenium. The
browser comes from ``scripts/browser-env.sh`` (apt-get ``chromium chromium-driver`` when
missing), so the test needs nothing installed by hand.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select, WebDriverWait

from conftest import ServerProcess

# The first test of a fresh machine also installs Chromium (apt-get, about a minute).
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]
TOKEN_KEY = "taskloom.workerToken"
WAIT = 30  # seconds a page state may take to appear (a slow shared machine)

XSS = '<img src=x onerror="window.__pwned = 1">Tom & "Jerry"'
# What the worker answers for each task, keyed by the task's text (what the page shows).
ANSWERS: dict[str, dict[str, Any]] = {
    "A grey cat asleep on a sofa": {"category": "cat", "is_clear": True},
    "Something barks behind the fence": {"category": "dog", "is_clear": False},
    XSS: {"category": "bird", "is_clear": True},
}


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def browser_paths() -> dict[str, str]:
    """``CHROMIUM`` and ``CHROMEDRIVER``: installed by scripts/browser-env.sh when missing."""
    proc = subprocess.run(
        ["bash", str(ROOT / "scripts" / "browser-env.sh")],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if proc.returncode != 0:
        pytest.fail(f"scripts/browser-env.sh failed:\n{proc.stdout}\n{proc.stderr}")
    paths = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
    assert {"CHROMIUM", "CHROMEDRIVER"} <= paths.keys(), proc.stdout
    return paths


@pytest.fixture
def browser(browser_paths: dict[str, str], tmp_path: Path) -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = browser_paths["CHROMIUM"]
    for arg in (
        "--headless=new",
        "--no-sandbox",  # the tests may run as root (CI containers)
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1200,1000",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(arg)
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


class Requester:
    """The requester's side over the native REST API."""

    def __init__(self, server: ServerProcess) -> None:
        self.http = httpx.Client(
            base_url=server.url,
            headers={"Authorization": f"Bearer {server.api_key}"},
            timeout=60,
        )

    def call(self, method: str, path: str, **kw: Any) -> Any:
        resp = self.http.request(method, path, **kw)
        assert resp.status_code < 300, (method, path, resp.status_code, resp.text)
        return resp.json() if resp.content else None

    def pool_with_tasks(
        self,
        output_spec: dict[str, Any],
        inputs: list[dict[str, Any]],
        input_spec: dict[str, Any] | None = None,
    ) -> str:
        """An open pool of single-task suites, one per item of ``inputs``; its id."""
        project = self.call(
            "POST",
            "/v1/crowd/projects",
            json={
                "public_name": "Animals",
                "public_description": "Say what is in the picture",
                "public_instructions": "Pick the animal. <b>Look twice.</b>",
                "task_spec": {
                    "input_spec": input_spec or {"text": {"type": "string"}},
                    "output_spec": output_spec,
                    "view_spec": {"settings": {"showSkip": True}},
                },
            },
        )
        pool = self.call(
            "POST",
            "/v1/crowd/pools",
            json={
                "project_id": project["id"],
                "private_name": "animals, first batch",
                "public_description": "Look, then answer",
                "reward_per_assignment": 0.01,
                "assignment_max_duration_seconds": 600,
                "will_expire": (datetime.now(UTC) + timedelta(days=1)).isoformat(),
                "defaults": {"default_overlap_for_new_tasks": 1},
                "mixer_config": {"real_tasks_count": 1},
            },
        )
        created = self.call(
            "POST",
            "/v1/crowd/tasks",
            params={"open_pool": "true", "allow_defaults": "true"},
            json=[{"pool_id": pool["id"], "input_values": values} for values in inputs],
        )
        assert not created.get("validation_errors"), created
        return str(pool["id"])

    def worker_token(self, name: str = "Ada") -> str:
        return str(self.call("POST", "/v1/crowd/workers", json={"name": name})["token"])

    def assignments(self, pool_id: str, status: str | None = None) -> list[dict[str, Any]]:
        params = {"pool_id": pool_id, "limit": 100}
        if status:
            params["status"] = status
        return list(self.call("GET", "/v1/crowd/assignments", params=params)["data"])


@pytest.fixture
def requester(server: ServerProcess) -> Iterator[Requester]:
    r = Requester(server)
    yield r
    r.http.close()


# ---------------------------------------------------------------------------- page helpers


def wait_for(driver: WebDriver, what: Callable[[WebDriver], Any], message: str) -> Any:
    return WebDriverWait(driver, WAIT, poll_frequency=0.05).until(what, message)


def visible(driver: WebDriver, element_id: str) -> WebElement:
    return wait_for(
        driver,
        lambda d: (e := d.find_element(By.ID, element_id)).is_displayed() and e,
        f"#{element_id} never became visible; alert: {alert_text(driver)!r}",
    )


def alert_text(driver: WebDriver) -> str:
    box = driver.find_element(By.ID, "alert")
    return box.text if box.is_displayed() else ""


def sign_in(driver: WebDriver, url: str, token: str) -> None:
    driver.get(url)
    visible(driver, "token").send_keys(token)
    driver.find_element(By.ID, "sign-in").click()


def current_task(driver: WebDriver) -> WebElement:
    """The first task shown, once the task view is up."""
    visible(driver, "task-view")
    return driver.find_element(By.CSS_SELECTOR, '#tasks article[data-task="0"]')


def field(task: WebElement, name: str) -> WebElement:
    return task.find_element(By.CSS_SELECTOR, f'.field[data-field="{name}"]')


def choose(task: WebElement, name: str, option_text: str) -> None:
    """Click the radio button or check box of field ``name`` labelled ``option_text``."""
    labels = field(task, name).find_elements(By.CSS_SELECTOR, ".option label")
    matching = [label for label in labels if label.text == option_text]
    assert len(matching) == 1, [label.text for label in labels]
    matching[0].click()


def field_input(task: WebElement, name: str) -> WebElement:
    """The text/number/select/textarea of a field, found through its ``<label for>``."""
    box = field(task, name)
    label = box.find_element(By.CSS_SELECTOR, "label")
    return box.find_element(By.ID, label.get_attribute("for"))


def field_error(task: WebElement, name: str) -> str:
    error = field(task, name).find_element(By.CSS_SELECTOR, ".field-error")
    return error.text if error.is_displayed() else ""


def submit_and_wait_for_next(driver: WebDriver, task: WebElement) -> None:
    driver.find_element(By.ID, "submit").click()

    def moved_on(d: WebDriver) -> bool:
        if d.find_element(By.ID, "done-view").is_displayed():
            return True
        try:
            task.is_displayed()
        except StaleElementReferenceException:
            return d.find_element(By.ID, "task-view").is_displayed()
        return False

    wait_for(driver, moved_on, f"the page did not move on; alert: {alert_text(driver)!r}")


# ---------------------------------------------------------------------------- tests


def test_page_and_assets_are_served_with_a_strict_policy(server: ServerProcess) -> None:
    page = httpx.get(f"{server.url}/label", timeout=30)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert page.headers["x-frame-options"] == "DENY"
    assert '<script type="module" src="label/label.js">' in page.text
    for name in ("label.js", "fields.js"):
        script = httpx.get(f"{server.url}/label/{name}", timeout=30)
        assert script.status_code == 200
        assert script.headers["content-type"].startswith("text/javascript")
        assert "innerHTML" not in script.text  # task content only ever goes in as text
    css = httpx.get(f"{server.url}/label/label.css", timeout=30)
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    for name in ("label.py", "__init__.py", "label.html.bak"):
        missing = httpx.get(f"{server.url}/label/{name}", timeout=30)
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "not_found"


def test_worker_labels_three_tasks(
    server: ServerProcess, requester: Requester, browser: WebDriver
) -> None:
    pool_id = requester.pool_with_tasks(
        output_spec={
            "category": {"type": "string", "allowed_values": ["cat", "dog", "bird"]},
            "is_clear": {"type": "boolean"},
        },
        input_spec={
            "text": {"type": "string"},
            "image": {"type": "url", "required": False},
            "source": {"type": "json", "required": False},
            "secret": {"type": "string", "hidden": True},
        },
        inputs=[
            {
                "text": "A grey cat asleep on a sofa",
                "image": "http://127.0.0.1:9/photos/cat.png?size=large",
                "source": {"camera": "phone", "iso": 200},
                "secret": "HIDDEN-1",
            },
            {"text": "Something barks behind the fence", "secret": "HIDDEN-2"},
            {"text": XSS, "secret": "HIDDEN-3"},
        ],
    )
    token = requester.worker_token()
    sign_in(browser, f"{server.url}/label?pool={pool_id}", token)

    current_task(browser)
    browser.find_element(By.CSS_SELECTOR, "#instructions summary").click()
    instructions = browser.find_element(By.ID, "instructions-text").text
    assert instructions == "Pick the animal. <b>Look twice.</b>"  # as text, not markup

    seen: list[str] = []
    for _ in range(3):
        task = current_task(browser)
        text = task.find_element(By.CSS_SELECTOR, '[data-input="text"]').text
        seen.append(text)
        shown = task.find_element(By.CSS_SELECTOR, ".inputs").text
        assert "HIDDEN" not in shown and "secret" not in shown  # hidden inputs stay hidden
        if text == "A grey cat asleep on a sofa":
            image = task.find_element(By.CSS_SELECTOR, '[data-input="image"] img')
            assert image.get_attribute("src") == "http://127.0.0.1:9/photos/cat.png?size=large"
            source = task.find_element(By.CSS_SELECTOR, '[data-input="source"] pre').text
            assert '"camera": "phone"' in source  # json pretty-printed
        answer = ANSWERS[text]
        choose(task, "category", answer["category"])
        choose(task, "is_clear", "Yes" if answer["is_clear"] else "No")
        submit_and_wait_for_next(browser, task)

    visible(browser, "done-view")
    assert browser.find_element(By.ID, "done-title").text == "Nothing left"
    assert sorted(seen) == sorted(ANSWERS)
    # Task text with markup was shown as text and ran nothing.
    assert browser.execute_script("return window.__pwned === undefined")
    # The token lives in this tab's sessionStorage, never in the address.
    assert token not in browser.current_url
    assert browser.execute_script(f"return sessionStorage.getItem('{TOKEN_KEY}')") == token
    assert f"pool={pool_id}" in browser.current_url

    submitted = requester.assignments(pool_id, "SUBMITTED")
    assert len(submitted) == 3
    got = {a["tasks"][0]["input_values"]["text"]: a["solutions"] for a in submitted}
    assert got == {text: [{"output_values": answer}] for text, answer in ANSWERS.items()}
    assert len({a["user_id"] for a in submitted}) == 1


def test_server_validation_error_is_shown_next_to_the_field(
    server: ServerProcess, requester: Requester, browser: WebDriver
) -> None:
    # The pattern uses Python's (?P<name>...) group, which JavaScript cannot read: the page
    # leaves it to the server, whose error must then appear next to the field.
    pool_id = requester.pool_with_tasks(
        output_spec={
            "code": {"type": "string", "pattern": r"(?P<prefix>[A-Z]{3})-\d+"},
            "note": {"type": "string", "required": False, "max_length": 20},
        },
        inputs=[{"text": "Read the code on the label"}],
    )
    sign_in(browser, f"{server.url}/label?pool={pool_id}", requester.worker_token())
    task = current_task(browser)

    # An empty required answer is caught on the page, before anything is sent.
    browser.find_element(By.ID, "submit").click()
    wait_for(browser, lambda d: field_error(task, "code"), "no client-side error shown")
    assert field_error(task, "code") == "This answer is required."
    assert requester.assignments(pool_id, "SUBMITTED") == []

    code = field_input(task, "code")
    code.send_keys("abc-12")
    browser.find_element(By.ID, "submit").click()
    wait_for(
        browser,
        lambda d: "pattern" in field_error(task, "code"),
        f"the server's error did not appear; alert: {alert_text(browser)!r}",
    )
    assert code.get_attribute("aria-invalid") == "true"
    assert field_error(task, "note") == ""
    assert requester.assignments(pool_id, "SUBMITTED") == []

    code.clear()
    code.send_keys("ABC-12")
    submit_and_wait_for_next(browser, task)
    visible(browser, "done-view")
    (submitted,) = requester.assignments(pool_id, "SUBMITTED")
    assert submitted["solutions"] == [{"output_values": {"code": "ABC-12"}}]


def test_every_kind_of_answer_is_sent_with_its_type(
    server: ServerProcess, requester: Requester, browser: WebDriver
) -> None:
    sizes = [f"s{i}" for i in range(12)]  # more than fit as radio buttons: a <select>
    pool_id = requester.pool_with_tasks(
        output_spec={
            "count": {"type": "integer", "min_value": 0, "max_value": 10},
            "score": {"type": "float"},
            "tags": {"type": "array_string", "allowed_values": ["red", "green", "blue"]},
            "size": {"type": "string", "allowed_values": sizes},
            "meta": {"type": "json"},
            "comment": {"type": "string", "required": False},
            "glossy": {"type": "boolean", "required": False},
            "where": {"type": "coordinates"},
            "steps": {"type": "array_integer", "max_value": 9},
        },
        inputs=[{"text": "Describe the ball"}],
    )
    sign_in(browser, f"{server.url}/label?pool={pool_id}", requester.worker_token())
    task = current_task(browser)

    count = field_input(task, "count")
    assert count.get_attribute("type") == "number"
    assert (count.get_attribute("min"), count.get_attribute("max")) == ("0", "10")
    count.send_keys("11")
    field_input(task, "score").send_keys("0.25")
    choose(task, "tags", "red")
    choose(task, "tags", "blue")
    Select(field_input(task, "size")).select_by_visible_text("s7")
    field_input(task, "meta").send_keys('{"k": [1, 2]}')
    field_input(task, "where").send_keys("55.75, 37.61")
    field_input(task, "steps").send_keys("1\n2\n\n5\n")
    choose(task, "glossy", "Yes")  # then changed their mind: an optional answer is cleared
    field(task, "glossy").find_element(By.CSS_SELECTOR, "button.link").click()

    browser.find_element(By.ID, "submit").click()
    wait_for(browser, lambda d: field_error(task, "count"), "no client-side range error")
    assert "10" in field_error(task, "count")
    count.clear()
    count.send_keys("3")
    submit_and_wait_for_next(browser, task)
    visible(browser, "done-view")

    (submitted,) = requester.assignments(pool_id, "SUBMITTED")
    assert submitted["solutions"] == [
        {
            "output_values": {
                "count": 3,
                "score": 0.25,
                "tags": ["red", "blue"],
                "size": "s7",
                "meta": {"k": [1, 2]},
                "where": "55.75, 37.61",
                "steps": [1, 2, 5],
            }
        }
    ]


def test_skip_moves_on_and_a_bad_token_is_refused(
    server: ServerProcess, requester: Requester, browser: WebDriver
) -> None:
    pool_id = requester.pool_with_tasks(
        output_spec={"ok": {"type": "boolean"}},
        inputs=[{"text": "Is this fine?"}],
    )
    sign_in(browser, f"{server.url}/label", "not-a-worker-token")
    wait_for(browser, lambda d: alert_text(d), "a wrong token raised no message")
    assert "not accepted" in alert_text(browser)
    assert browser.find_element(By.ID, "login-view").is_displayed()
    assert browser.execute_script(f"return sessionStorage.getItem('{TOKEN_KEY}')") is None

    visible(browser, "token").send_keys(requester.worker_token("Bo"))
    browser.find_element(By.ID, "sign-in").click()
    # No pool in the address: the worker picks one of the open pools.
    visible(browser, "pools-view")
    pools = browser.find_elements(By.CSS_SELECTOR, "#pool-list button")
    assert [p.get_attribute("data-pool") for p in pools] == [pool_id]
    assert pools[0].text == "Animals"  # the project's public name
    pools[0].click()
    current_task(browser)
    assert f"pool={pool_id}" in browser.current_url
    browser.find_element(By.ID, "skip").click()
    visible(browser, "done-view")
    (skipped,) = requester.assignments(pool_id)
    assert skipped["status"] == "SKIPPED"

    # Signing out forgets the token.
    browser.find_element(By.ID, "sign-out").click()
    visible(browser, "login-view")
    assert browser.execute_script(f"return sessionStorage.getItem('{TOKEN_KEY}')") is None
