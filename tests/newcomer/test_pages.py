"""The guide's pages run as written, in a fresh venv holding the built wheel.

``docs/quickstart.md`` is followed once, in a new ``django-admin startproject`` (the
``quickstart`` fixture); every other page starts from a copy of the project it leaves.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import DOCS
from .follow import Project
from .pages import RUN_AS_WRITTEN

pytestmark = [pytest.mark.newcomer, pytest.mark.redis]

#: An order posted to the quickstart's view with Django's test client, in the project's shell.
POST_AN_ORDER = (
    'python manage.py shell -c "from django.test import Client; response = Client('
    "SERVER_NAME='localhost').post('/orders/', {'customer': 'grace@example.com', 'total': "
    "'5.00'}, content_type='application/json'); print(response.status_code, "
    'response.content.decode())"'
)


def test_an_order_placed_through_the_view_reaches_redis(
    quickstart: Project, docs_redis_url: str, tmp_path: Path
) -> None:
    """What the issue's newcomer did, after the quickstart: view, ``--burst``, ``XRANGE``."""
    import redis

    project = quickstart.copy(tmp_path / "site")
    answer = project.run(POST_AN_ORDER, "the view").strip().splitlines()[-1]
    status, _, body = answer.partition(" ")
    assert status == "201", body
    order_id = json.loads(body)["id"]
    project.run("python manage.py outbox_worker --burst", "outbox_worker --burst")
    client = redis.Redis.from_url(docs_redis_url)
    try:
        entries = client.xrange("events")
    finally:
        client.close()
    events = [json.loads(fields[b"cloud_event"]) for _id, fields in entries]
    assert [event["data"] for event in events if event["subject"] == str(order_id)] == [
        {"order_id": order_id, "customer": "grace@example.com", "total": "5.00"}
    ]


@pytest.mark.parametrize("page", [page for page in RUN_AS_WRITTEN[1:] if (DOCS / page).exists()])
def test_the_page_runs_as_written(page: str, quickstart: Project, tmp_path: Path) -> None:
    quickstart.copy(tmp_path / "site").follow(DOCS / page)
