"""The outbox's failure-groups page, and replaying or discarding one group from it.

The groups are those of :mod:`~django_broadcaster.outbox.failures`. "Replay" needs the model's
``change`` permission and requeues the group's failed events (each goes again only to the
destinations that have not accepted it); "discard" needs ``delete`` and asks first, on a page
that says how many events will go. Both act on the events failed at the moment they run.
"""

from __future__ import annotations

from typing import Any, Protocol

from django.contrib import messages
from django.contrib.admin import AdminSite
from django.core.exceptions import PermissionDenied
from django.db.models.options import Options
from django.forms import Media
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from ..fingerprints import is_fingerprint
from ..outbox.failures import failure_groups, group_events


class OutboxAdmin(Protocol):
    """What the pages need of the outbox's model admin (its site, options and permissions)."""

    admin_site: AdminSite
    opts: Options[Any]

    @property
    def media(self) -> Media: ...
    def has_view_permission(self, request: HttpRequest) -> bool: ...
    def has_retry_permission(self, request: HttpRequest) -> bool: ...
    def has_discard_permission(self, request: HttpRequest) -> bool: ...
    def message_user(self, request: HttpRequest, message: str, level: int) -> None: ...


def failure_urls(model_admin: OutboxAdmin) -> list[URLPattern]:
    """Return the URLs of the failure pages, under the model's admin URLs (``.../failures/``)."""
    pages = _Pages(model_admin)
    wrap = model_admin.admin_site.admin_view
    return [
        path("failures/", wrap(pages.groups), name=pages.name("failures")),
        path(
            "failures/<str:fingerprint>/replay/",
            wrap(require_POST(pages.replay)),
            name=pages.name("failures_replay"),
        ),
        path(
            "failures/<str:fingerprint>/discard/",
            wrap(pages.discard),
            name=pages.name("failures_discard"),
        ),
    ]


class _Pages:
    """The views, bound to the outbox's model admin (its permissions, site and options)."""

    def __init__(self, model_admin: OutboxAdmin) -> None:
        self.admin = model_admin
        self.opts = model_admin.opts

    def name(self, view: str) -> str:
        return f"{self.opts.app_label}_{self.opts.model_name}_{view}"

    def url(self, view: str, *args: str) -> str:
        return reverse(f"{self.admin.admin_site.name}:{self.name(view)}", args=args)

    def groups(self, request: HttpRequest) -> TemplateResponse:
        """List the failure groups; raise ``PermissionDenied`` without the view permission."""
        if not self.admin.has_view_permission(request):
            raise PermissionDenied
        context = self._context(request, "Failure groups")
        context |= {
            "groups": failure_groups(),
            "may_replay": self.admin.has_retry_permission(request),
            "may_discard": self.admin.has_discard_permission(request),
        }
        return TemplateResponse(request, "admin/django_broadcaster/failures.html", context)

    def replay(self, request: HttpRequest, fingerprint: str) -> HttpResponse:
        """Requeue the group's failed events (``POST``, the ``change`` permission)."""
        if not self.admin.has_retry_permission(request):
            raise PermissionDenied
        requeued = group_events(_known(fingerprint)).retry_now()
        self.admin.message_user(
            request,
            f"Replaying group {fingerprint}: {requeued} failed events will be sent again to "
            "the destinations that have not accepted them.",
            messages.SUCCESS if requeued else messages.WARNING,
        )
        return HttpResponseRedirect(self.url("failures"))

    def discard(self, request: HttpRequest, fingerprint: str) -> HttpResponse:
        """Ask, then (``POST``) delete the group's failed events (the ``delete`` permission)."""
        if not self.admin.has_discard_permission(request):
            raise PermissionDenied
        events = group_events(_known(fingerprint)).not_held(timezone.now())
        if request.method != "POST":
            context = self._context(request, "Discard a failure group")
            context |= {"fingerprint": fingerprint, "count": events.count()}
            return TemplateResponse(request, "admin/django_broadcaster/discard_group.html", context)
        deleted, _ = events.delete()
        self.admin.message_user(
            request, f"Discarded {deleted} failed events of group {fingerprint}.", messages.SUCCESS
        )
        return HttpResponseRedirect(self.url("failures"))

    def _context(self, request: HttpRequest, title: str) -> dict[str, Any]:
        return {
            **self.admin.admin_site.each_context(request),
            "title": title,
            "opts": self.opts,
            "media": self.admin.media,
            "changelist": self.url("changelist"),
            "failures_url": self.url("failures"),
        }


def _known(fingerprint: str) -> str:
    """Return ``fingerprint``; raise ``Http404`` for one of the wrong form."""
    if not is_fingerprint(fingerprint):
        raise Http404(f"{fingerprint!r} is not a failure group's fingerprint.")
    return fingerprint
