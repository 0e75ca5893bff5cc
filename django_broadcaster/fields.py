"""The outbox's ``data`` column: JSON that the publisher has already encoded once.

The publisher encodes an event's data to check it (:func:`~django_broadcaster.events.encode_data`:
strict JSON, size limit) and gives the new row its own copy of the data, decoded from that text.
:func:`keep_encoding` leaves the text on the row, and the row's insert sends it as it is,
instead of having Django encode the same data a second time (for 1 KB of data, that second
encoding was a tenth of what ``publish_event`` adds to a bare ``create``, and a fifth of a bulk
publish). The text serves the row's insert only, and only while ``row.data`` is still the object
it encodes; every other write encodes ``data`` as :class:`~django.db.models.JSONField` does.

A change made *in place* to ``row.data`` between :func:`keep_encoding` and the insert would not
be seen. The publisher inserts at once, and it keeps no text while a ``post_init`` or
``pre_save`` receiver could reach the row first (any receiver of those signals for the outbox's
model, or for every model, turns the kept text off).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

from django.db import models
from django.db.models.signals import post_init, pre_save

#: Where a row keeps the text :func:`keep_encoding` gave it.
_ENCODING: Final = "_data_encoding"


@dataclass(frozen=True)
class _Encoded:
    """The JSON text of ``value``, made when the publisher checked it."""

    value: Any
    text: str


class _AsEncoded(json.JSONEncoder):
    """The "encoder" of an :class:`_Encoded` value: its text, as it is."""

    def encode(self, o: Any) -> str:
        return str(o.text)


class EventDataField(models.JSONField):
    """The outbox's ``data``: a ``JSONField`` whose insert can send the publisher's JSON text."""

    def pre_save(self, model_instance: models.Model, add: bool) -> Any:
        """Return what a write of ``model_instance`` sends: the kept text, or the data itself.

        The kept text is returned while the row is being inserted and ``data`` is still the
        object it encodes, as often as Django asks (Django 6.0 asks twice per insert). The
        first other write drops it.
        """
        value = super().pre_save(model_instance, add)
        encoded = model_instance.__dict__.get(_ENCODING)
        if encoded is None:
            return value
        if add and model_instance._state.adding and encoded.value is value:
            return encoded
        del model_instance.__dict__[_ENCODING]
        return value

    def get_db_prep_value(self, value: Any, connection: Any, prepared: bool = False) -> Any:
        """Return ``value`` as the database takes JSON; kept text goes as it is."""
        if isinstance(value, _Encoded):
            return connection.ops.adapt_json_value(value, _AsEncoded)
        return super().get_db_prep_value(value, connection, prepared)


def keep_encoding(row: models.Model, text: str) -> None:
    """Let the insert of ``row`` send ``text``, the JSON of ``row.data``, without encoding it.

    ``text`` must decode to ``row.data``; ``None`` data is written as SQL ``NULL`` regardless.
    Replacing ``row.data`` before the insert makes the insert encode the new value instead. While
    a ``post_init`` or ``pre_save`` receiver listens for the row's model, nothing is kept.
    """
    data = row.__dict__["data"]
    if data is None or any(signal.has_listeners(type(row)) for signal in (post_init, pre_save)):
        return
    row.__dict__[_ENCODING] = _Encoded(data, text)
