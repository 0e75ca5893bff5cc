"""The admin in a real browser: run "retry now"; the changelist's layout, the dashboard and the
failure-groups pages (outbox and inbox) at 1400x900, with screenshots.

Drives Debian's headless Chromium through chromedriver (packages ``chromium`` and
``chromium-driver``) against pytest-django's ``live_server``. Without them the test is skipped,
except under ``CI=true``, where it fails. Screenshots go to ``artifacts/screenshots/`` at the
repository's root (ignored by git; ``SCREENSHOTS_DIR`` to change it), where CI leaves them.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import override_settings
from django.utils import timezone

from django_broadcaster.consumers.inbox import keep_dead_letter
from django_broadcaster.events import CloudEvent
from django_broadcaster.formats import to_structured_json
from django_broadcaster.models import OutboxEvent, Status
from django_broadcaster.publishers import publisher
from django_broadcaster.registry import consumer_registry
from tests.ci import missing
from tests.integration.test_admin import BACKENDS

pytestmark = pytest.mark.browser

WAIT_S = 20
CHANGELIST = "/admin/django_broadcaster/outboxevent/"
SCREENSHOTS = Path(
    os.environ.get("SCREENSHOTS_DIR") or Path(__file__).parents[2] / "artifacts" / "screenshots"
)
CHROMIUM_FLAGS = [
    "--headless",
    "--window-size=1400,900",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    """Yield a headless Chromium WebDriver with a fresh profile; quit it afterwards."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        missing("selenium is not installed (pip install -e '.[test]')")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if not chromium or not driver_path:
        missing(
            "chromium and chromedriver are not installed (apt-get install chromium chromium-driver)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.implicitly_wait(0)
    yield driver
    driver.quit()


def test_an_admin_retries_a_failed_event(browser: Any, live_server: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.select import Select
    from selenium.webdriver.support.ui import WebDriverWait

    row = publisher.publish_event("order.created", "shop", {"order": 7})
    OutboxEvent.objects.filter(pk=row.pk).update(status=Status.FAILED, retry_count=6)
    wait = WebDriverWait(browser, WAIT_S)
    log_in(browser, f"{live_server.url}{CHANGELIST}")

    checkbox = wait.until(
        ready.element_to_be_clickable((By.CSS_SELECTOR, f"input[value='{row.pk}']"))
    )
    checkbox.click()
    Select(browser.find_element(By.NAME, "action")).select_by_value("retry_now")
    browser.find_element(By.NAME, "index").click()

    message = wait.until(
        ready.visibility_of_element_located((By.CSS_SELECTOR, ".messagelist .success"))
    )
    assert message.text == "1 of 1 selected events will be retried now."
    row.refresh_from_db()
    assert (row.status, row.retry_count) == (Status.PENDING, 0)


@override_settings(BROADCASTER={"BACKENDS": BACKENDS})
def test_the_changelist_fits_1400_pixels(browser: Any, live_server: Any) -> None:
    from selenium.webdriver.common.by import By

    rows = busy_outbox()
    log_in(browser, f"{live_server.url}{CHANGELIST}")
    assert browser.execute_script("return window.innerWidth") == 1400
    id_cell = browser.find_element(By.CSS_SELECTOR, f"span[title='{rows[0].pk}']")
    one_line = browser.execute_script(
        "return parseFloat(getComputedStyle(arguments[0]).lineHeight)", id_cell
    )
    assert (id_cell.text, id_cell.size["height"] < 1.5 * one_line) == (
        "…" + str(rows[0].pk)[-8:],
        True,
    )
    save_screenshot(browser, "changelist-1400x900.png")
    viewport = browser.execute_script("return document.documentElement.clientWidth")
    header = browser.find_element(By.CSS_SELECTOR, "#result_list th.column-created")
    cells = browser.find_elements(By.CSS_SELECTOR, "#result_list td.field-created")
    for element in [header, *cells]:
        assert element.location["x"] + element.size["width"] <= viewport, element.text
        assert browser.execute_script(
            "return arguments[0].scrollWidth <= arguments[0].clientWidth", element
        )


@override_settings(BROADCASTER={"BACKENDS": BACKENDS})
def test_the_dashboard_shows_destinations_failures_and_the_chart(
    browser: Any, live_server: Any
) -> None:
    from selenium.webdriver.common.by import By

    busy_outbox()
    log_in(browser, f"{live_server.url}{CHANGELIST}")
    browser.find_element(By.CSS_SELECTOR, ".object-tools a[href$='/dashboard/']").click()
    kafka = browser.find_element(By.CSS_SELECTOR, "tr[data-destination='kafka']")
    assert "failing" in kafka.text
    failures = browser.find_element(By.ID, "broadcaster-failures")
    assert "EventRejected" in failures.text
    chart = browser.find_element(By.CSS_SELECTOR, ".broadcaster-chart svg")
    assert chart.size["width"] == 720
    assert len(chart.find_elements(By.CSS_SELECTOR, "rect.published")) == 1
    save_screenshot(browser, "dashboard-1400x900.png")
    failures.find_element(By.LINK_TEXT, "EventRejected").click()
    assert len(browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")) == 3


@override_settings(BROADCASTER={"BACKENDS": BACKENDS})
def test_a_failure_group_is_shown_discard_asks_and_replay_requeues(
    browser: Any, live_server: Any
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import WebDriverWait

    rows = busy_outbox()
    wait = WebDriverWait(browser, WAIT_S)
    log_in(browser, f"{live_server.url}{CHANGELIST}")
    browser.find_element(By.CSS_SELECTOR, ".object-tools a[href$='/failures/']").click()
    [group] = browser.find_elements(By.CSS_SELECTOR, "#broadcaster-failure-groups tbody tr")
    assert "kafka" in group.text and "EventRejected" in group.text
    assert "message too large for topic orders; the broker takes <n> MB at most" in group.text
    viewport = browser.execute_script("return document.documentElement.clientWidth")
    for button in group.find_elements(By.CSS_SELECTOR, ".broadcaster-actions .button"):
        assert button.location["x"] + button.size["width"] <= viewport  # in sight at 1400 px
    save_screenshot(browser, "failure-groups-1400x900.png")

    group.find_element(By.PARTIAL_LINK_TEXT, "Discard this group").click()
    assert browser.find_element(By.ID, "broadcaster-discard-count").text == "3"
    save_screenshot(browser, "discard-group-1400x900.png")
    browser.find_element(By.LINK_TEXT, "No, take me back").click()
    wait.until(ready.element_to_be_clickable((By.XPATH, "//button[text()='Replay this group']")))
    browser.find_element(By.XPATH, "//button[text()='Replay this group']").click()
    message = wait.until(
        ready.visibility_of_element_located((By.CSS_SELECTOR, ".messagelist .success"))
    )
    assert "3 failed events will be sent again" in message.text
    statuses = OutboxEvent.objects.filter(pk__in=[r.pk for r in rows]).values_list("status")
    assert set(statuses) == {(Status.PENDING,)}


def test_dead_letter_groups_are_replayed_from_the_inbox_admin(
    browser: Any, live_server: Any, global_handlers: Any
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import WebDriverWait

    handled: list[str] = []
    global_handlers(consumer_registry, "shop.order.paid", lambda event: handled.append(event.id))
    for number in range(4):
        event = CloudEvent(event_type="shop.order.paid", source="shop", id=f"order-{number}")
        keep_dead_letter(
            source="shop",
            event_id=str(event.id),
            event_type=event.event_type,
            error=f"DoesNotExist: Customer {1000 + number} does not exist",
            payload=to_structured_json(event).decode(),
            attempts=5,
        )
    log_in(browser, f"{live_server.url}/admin/django_broadcaster/inboxentry/")
    browser.find_element(By.CSS_SELECTOR, ".object-tools a[href$='/failures/']").click()
    [group] = browser.find_elements(By.CSS_SELECTOR, "#broadcaster-failure-groups tbody tr")
    assert "Customer <n> does not exist" in group.text
    save_screenshot(browser, "dead-letter-groups-1400x900.png")
    group.find_element(By.XPATH, ".//button[text()='Replay this group']").click()
    message = WebDriverWait(browser, WAIT_S).until(
        ready.visibility_of_element_located((By.CSS_SELECTOR, ".messagelist .success"))
    )
    assert message.text == "Replayed 4 dead letters: 4 processed, 0 failed, 0 gone."
    assert sorted(handled) == [f"order-{number}" for number in range(4)]


def log_in(browser: Any, then: str) -> None:
    """Log in as a new superuser through the login page, which then opens ``then``."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    User.objects.create_superuser("admin", "admin@example.com", "a-long-password")
    origin, _, path = then.partition("/admin/")
    browser.get(f"{origin}/admin/login/?next=/admin/{path}")
    browser.find_element(By.NAME, "username").send_keys("admin")
    browser.find_element(By.NAME, "password").send_keys("a-long-password")
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    WebDriverWait(browser, WAIT_S).until(lambda driver: "/login/" not in driver.current_url)


def busy_outbox() -> list[OutboxEvent]:
    """Return rows as a busy outbox has them: long types and subjects, failures, one published."""
    now = timezone.now()
    error = "EventRejected: message too large for topic orders; the broker takes 1 MB at most"
    at = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    delivery = {"kafka": {"state": "rejected", "attempts": 6, "error": error, "at": at}}
    failed = [
        publisher.publish_event(
            "com.example.shop.order.payment-authorised", "https://shop.example.com/orders",
            {"order": n}, subject=f"orders/2026/12/{n:06d}",
        )
        for n in range(3)
    ]  # fmt: skip
    OutboxEvent.objects.filter(pk__in=[r.pk for r in failed]).update(
        status=Status.FAILED, retry_count=6, delivery=delivery, last_error=f"kafka: {error}"
    )
    published = publisher.publish_event("order.created", "shop", {"order": 7})
    ten_minutes_ago = now - timedelta(minutes=10)  # kafka's last delivery, before the failures
    OutboxEvent.objects.filter(pk=published.pk).update(
        status=Status.PUBLISHED, published_at=ten_minutes_ago
    )
    return failed


def save_screenshot(browser: Any, name: str) -> None:
    """Save the window as ``name`` in :data:`SCREENSHOTS` (made if missing)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(SCREENSHOTS / name))
