"""A transactional outbox for Django that delivers CloudEvents.

Publish with :data:`django_broadcaster.publishers.publisher` inside your transaction, run
``python manage.py outbox_worker``, and the events reach every configured backend and the
local handlers registered with :data:`django_broadcaster.registry.event_registry`.
"""

__version__ = "0.2.0"
