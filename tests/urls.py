from django.contrib import admin
from django.urls import path

from django_broadcaster.receivers import webhook_view
from tests.webhooks.views import place_orders

urlpatterns = [
    path("admin/", admin.site.urls),
    path("webhooks/", webhook_view),
    path("orders/", place_orders),
]
