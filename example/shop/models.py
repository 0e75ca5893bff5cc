"""The shop's tables: orders, and the notifications the event handler writes."""

from django.db import models


class Order(models.Model):
    customer = models.EmailField()
    total = models.DecimalField(max_digits=10, decimal_places=2)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"order #{self.pk} for {self.customer}"


class Notification(models.Model):
    """A message the ``order.created`` handler queued for a customer.

    ``event_id`` is unique: the outbox delivers at least once, so the handler may see the same
    event twice, and the second time must not notify the customer again.
    """

    event_id = models.UUIDField(unique=True)
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="notifications")
    message = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.message
