"""An event not delivered by its ``expires_at`` ends ``expired`` and is never sent late."""

from datetime import datetime, timedelta, timezone

import pytest
from django.utils import timezone as django_timezone

from django_broadcaster.backends import locmem
from django_broadcaster.conf import get_settings
from django_broadcaster.exceptions import InvalidEvent
from django_broadcaster.models import OutboxEvent, Status
from django_broadcaster.publishers import publisher
from django_broadcaster.registry import EventRegistry
from django_broadcaster.worker import Worker

pytestmark = pytest.mark.django_db(transaction=True)


def test_expires_at_becomes_the_expirytime_extension() -> None:
    moment = datetime(2030, 5, 6, 7, 8, 9, tzinfo=timezone.utc)
    row = publisher.publish_event("t", "s", expires_at=moment)
    assert row.extensions["expirytime"] == "2030-05-06T07:08:09Z"
    assert OutboxEvent.objects.get(pk=row.pk).expires_at == moment
    assert row.as_cloud_event().expires_at == moment


def test_an_expired_event_is_not_delivered() -> None:
    registry = EventRegistry()
    handled: list[object] = []
    registry.register()(handled.append)
    late = publisher.publish_event(
        "t", "s", expires_at=django_timezone.now() - timedelta(seconds=1)
    )
    on_time = publisher.publish_event(
        "t", "s", expires_at=django_timezone.now() + timedelta(hours=1)
    )

    stats = Worker(config=get_settings(), registry=registry, burst=True).run()

    assert (stats.published, stats.expired) == (1, 1)
    assert [e.id for e in locmem.outbox] == [str(on_time.id)]
    assert [e.id for e in handled] == [str(on_time.id)]  # type: ignore[attr-defined]
    late.refresh_from_db()
    assert late.status == Status.EXPIRED
    assert late.last_error.startswith("expired at ")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"expires_at": datetime(2030, 1, 1)}, "expires_at must be timezone-aware"),
        ({"extensions": {"expirytime": "tomorrow"}}, "not an RFC 3339 timestamp"),
        ({"extensions": {"expirytime": "2030-01-01T00:00:00"}}, "with a time zone"),
    ],
)
def test_bad_expiry_is_refused_at_the_call_site(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidEvent, match=message):
        publisher.publish_event("t", "s", **kwargs)  # type: ignore[arg-type]
    assert not OutboxEvent.objects.exists()
