"""URLs of the example shop."""

from django.urls import path
from shop import views

from django_broadcaster.receivers import webhook_view

urlpatterns = [
    path("orders/", views.create_order, name="create-order"),
    # Where SHOP_BROADCASTER=webhook posts by default: the shop receives its own events.
    path("webhooks/", webhook_view, name="webhooks"),
]
