"""The admin in a real browser: log in, select a failed event, run "retry now".

Drives Debian's headless Chromium through chromedriver (packages ``chromium`` and
``chromium-driver``) against pytest-django's ``live_server``. Without them the test is skipped,
except under ``CI=true``, where it fails.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User

from django_broadcaster.models import OutboxEvent, Status
from django_broadcaster.publishers import publisher
from tests.ci import missing

pytestmark = pytest.mark.browser

WAIT_S = 20
CHROMIUM_FLAGS = [
    "--headless",
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

    User.objects.create_superuser("admin", "admin@example.com", "a-long-password")
    row = publisher.publish_event("order.created", "shop", {"order": 7})
    OutboxEvent.objects.filter(pk=row.pk).update(status=Status.FAILED, retry_count=6)
    wait = WebDriverWait(browser, WAIT_S)

    browser.get(f"{live_server.url}/admin/login/?next=/admin/django_broadcaster/outboxevent/")
    browser.find_element(By.NAME, "username").send_keys("admin")
    browser.find_element(By.NAME, "password").send_keys("a-long-password")
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()

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
