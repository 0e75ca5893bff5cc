"""The example shop's URLs and the soak's view."""

from django.urls import path
from shop_project.urls import urlpatterns as shop_urls

from . import views

urlpatterns = [*shop_urls, path("soak/orders/", views.place_order_and_ship)]
