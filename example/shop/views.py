"""The shop's HTTP API."""

import json
from decimal import Decimal, InvalidOperation

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_POST

from .orders import place_order


@require_POST
def create_order(request: HttpRequest) -> HttpResponse:
    """Create an order from ``{"customer": "...", "total": "12.50"}`` and return it with 201.

    The ``order.created`` event is written in the same transaction as the order; a worker
    (``python manage.py outbox_worker``) delivers it afterwards.
    """
    try:
        body = json.loads(request.body)
        customer, total = str(body["customer"]), Decimal(str(body["total"]))
    except (ValueError, KeyError, TypeError, InvalidOperation):
        return JsonResponse(
            {"error": 'send JSON like {"customer": "ada@example.com", "total": "12.50"}'},
            status=400,
        )
    order, event = place_order(customer, total)
    return JsonResponse(
        {"order_id": order.pk, "event_id": str(event.pk), "total": str(order.total)}, status=201
    )
