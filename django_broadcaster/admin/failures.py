"""Failure-groups pages: the groups of one table's failures, and replaying or discarding one.

The outbox's page (``.../outboxevent/failures/``) lists the groups of
:mod:`~django_broadcaster.outbox.failures`; the inbox's (``.../inboxentry/failures/``) those of
its dead letters (:mod:`~django_broadcaster.consumers.replay`). A :class:`GroupActions` says
what a page lists and what its buttons do. "Replay" needs the model's ``change`` permission;
"discard" (the outbox only) needs ``delete`` and asks first, on a page that says how many will
go. Both act on what is failed at the moment they run; the admin only offers them, so a user
without the permission gets 403 even when posting by hand.
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol

from django.contrib import messages
from django.contrib.admin import AdminSite
from django.contrib.auth import get_permission_codename
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.db.models.options import Options
from django.forms import Media
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.text import Truncator
from django.views.decorators.http import require_POST

from ..fingerprints import FailureGroup, is_fingerprint

#: How many characters of an error the lists show.
ERROR_SHOWN = 60


def error_start(error: str) -> SafeString:
    """Return the start of ``error`` for a list; the whole text shows on pointing at it."""
    shown = Truncator(error).chars(ERROR_SHOWN)
    return format_html('<span class="broadcaster-error" title="{}">{}</span>', error, shown)


def has_model_permission(request: HttpRequest, opts: Options[Any], action: str) -> bool:
    """Return whether the user has the model's ``action`` permission (``change``, ...)."""
    codename = get_permission_codename(action, opts)
    return bool(request.user.has_perm(f"{opts.app_label}.{codename}"))


class GroupedAdmin(Protocol):
    """What the pages need of a model admin: its site, options and permissions."""

    admin_site: AdminSite
    opts: Options[Any]

    @property
    def media(self) -> Media: ...
    def has_view_permission(self, request: HttpRequest) -> bool: ...
    def has_retry_permission(self, request: HttpRequest) -> bool: ...
    def has_discard_permission(self, request: HttpRequest) -> bool: ...
    def message_user(self, request: HttpRequest, message: str, level: int) -> None: ...


class GroupActions:
    """What a failure-groups page lists and what its buttons do; one subclass per table."""

    #: The page's title, and the heading of the column that says where the failures happened.
    title: ClassVar[str]
    where: ClassVar[str]
    #: The page's explanation, under the table.
    help: ClassVar[str]
    #: Whether a group may be discarded (deleted) from the page.
    discards: ClassVar[bool] = False

    def groups(self) -> list[FailureGroup]:
        """Return the groups, the largest first."""
        raise NotImplementedError(f"{type(self).__name__} must implement groups().")

    def replay(self, request: HttpRequest, fingerprint: str) -> tuple[str, int]:
        """Replay the group ``fingerprint``; return a message for the user and its level."""
        raise NotImplementedError(f"{type(self).__name__} must implement replay().")

    def discardable(self, fingerprint: str) -> QuerySet[Any]:
        """Return the rows discarding the group would delete (when :attr:`discards`)."""
        raise NotImplementedError(f"{type(self).__name__} must implement discardable().")


def failure_urls(model_admin: GroupedAdmin, actions: GroupActions) -> list[URLPattern]:
    """Return the URLs of the failure pages, under the model's admin URLs (``.../failures/``)."""
    pages = _Pages(model_admin, actions)
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
    """The views, bound to a model admin (its permissions, site and options) and its actions."""

    def __init__(self, model_admin: GroupedAdmin, actions: GroupActions) -> None:
        self.admin, self.actions, self.opts = model_admin, actions, model_admin.opts

    def name(self, view: str) -> str:
        return f"{self.opts.app_label}_{self.opts.model_name}_{view}"

    def url(self, view: str) -> str:
        return reverse(f"{self.admin.admin_site.name}:{self.name(view)}")

    def groups(self, request: HttpRequest) -> TemplateResponse:
        """List the failure groups; raise ``PermissionDenied`` without the view permission."""
        if not self.admin.has_view_permission(request):
            raise PermissionDenied
        context = self._context(request, self.actions.title)
        context |= {
            "groups": self.actions.groups(),
            "where": self.actions.where,
            "help": self.actions.help,
            "may_replay": self.admin.has_retry_permission(request),
            "may_discard": self.actions.discards and self.admin.has_discard_permission(request),
        }
        return TemplateResponse(request, "admin/django_broadcaster/failures.html", context)

    def replay(self, request: HttpRequest, fingerprint: str) -> HttpResponse:
        """Replay the group (``POST``, the ``change`` permission)."""
        if not self.admin.has_retry_permission(request):
            raise PermissionDenied
        self.admin.message_user(request, *self.actions.replay(request, _known(fingerprint)))
        return HttpResponseRedirect(self.url("failures"))

    def discard(self, request: HttpRequest, fingerprint: str) -> HttpResponse:
        """Ask, then (``POST``) delete the group's rows (the ``delete`` permission)."""
        if not self.actions.discards:
            raise Http404("Nothing is discarded from this page.")
        if not self.admin.has_discard_permission(request):
            raise PermissionDenied
        rows = self.actions.discardable(_known(fingerprint))
        if request.method != "POST":
            context = self._context(request, "Discard a failure group")
            context |= {"fingerprint": fingerprint, "count": rows.count()}
            return TemplateResponse(request, "admin/django_broadcaster/discard_group.html", context)
        deleted, _ = rows.delete()
        noun = self.opts.verbose_name_plural
        message = f"Discarded {deleted} failed {noun} of group {fingerprint}."
        self.admin.message_user(request, message, messages.SUCCESS)
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
