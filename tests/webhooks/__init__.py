"""Receivers for the webhook tests: the project's view under gunicorn, and an SDK-only one."""
