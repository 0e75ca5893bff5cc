"""The soak's view: the example's ``place_order()`` and two more events of the order, one key.

Three events per order under the order's partition key make per-key order checkable. A request
with ``"rollback": true`` does the same work, then rolls the whole transaction back on purpose
and answers 409 with the ids the rolled-back events had: none of them may ever be delivered.
"""

import json
from decimal import Decimal

from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_POST
from shop.orders import EVENT_SOURCE, place_order

from django_broadcaster.publishers import publisher

from . import ORDER_STEPS


class RolledBack(Exception):
    """Raised inside the transaction to roll it back on purpose."""


@require_POST
def place_order_and_ship(request: HttpRequest) -> HttpResponse:
    """Place an order and publish its three events in one transaction; 201, or 409 on rollback."""
    body = json.loads(request.body)
    ids: list[str] = []
    try:
        with transaction.atomic():
            order, created = place_order(str(body["customer"]), Decimal(str(body["total"])))
            ids.append(str(created.pk))
            for step in ORDER_STEPS[1:]:
                event = publisher.publish_event(
                    step,
                    source=EVENT_SOURCE,
                    subject=str(order.pk),
                    data={"order_id": order.pk, "customer": order.customer},
                    partition_key=f"order-{order.pk}",
                )
                ids.append(str(event.pk))
            if body.get("rollback"):
                raise RolledBack
    except RolledBack:
        return JsonResponse({"event_ids": ids, "rolled_back": True}, status=409)
    return JsonResponse({"event_ids": ids, "rolled_back": False}, status=201)
