"""Receivers for the webhook tests: the project's view under gunicorn, and an SDK-only one."""

#: The event type the receiving view's handlers take (the drills' feed sends ``drill.event``).
HANDLED_TYPE = "tests.webhook.order"
