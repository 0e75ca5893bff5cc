"""A view that publishes orders, as a project's view does: the start of the end-to-end tests."""

import json

from django.db import transaction
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from django_broadcaster.publishers import publisher

from . import HANDLED_TYPE  # not from .handlers: this process must not register them


@csrf_exempt
def place_orders(request: HttpRequest) -> JsonResponse:
    """Publish one event per item of the posted JSON list, in one transaction; return their ids."""
    ids = []
    with transaction.atomic():
        for item in json.loads(request.body):
            row = publisher.publish_event(HANDLED_TYPE, "/shop/orders", item, subject="café order")
            ids.append(str(row.id))
    return JsonResponse({"ids": ids})
