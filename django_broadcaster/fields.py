"""The outbox's ``data`` column: JSON that the publisher has already encoded once.

The publisher encodes an event's data to check it (:func:`~django_broadcaster.events.encode_data`:
strict JSON, size limit). :func:`keep_encoding` leaves that text on the new row, and the row's
insert sends it as it is, instead of having Django encode the same data a second time (for 1 KB
of data that second encoding was a tenth of what ``publish_event`` adds to a bare ``create``).
The text is used for one write only, and only while ``row.data`` is still the object it encodes;
every other write encodes ``data`` as :class:`~django.db.models.JSONField` does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

from django.db import models
from django.db.models.signals import pre_save

#: Where a row keeps the encoding :func:`keep_encoding` gave it, until its next write.
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
    """A ``JSONField`` whose next write can send JSON text the publisher already made."""

    def pre_save(self, model_instance: models.Model, add: bool) -> Any:
        value = super().pre_save(model_instance, add)
        encoded = model_instance.__dict__.pop(_ENCODING, None)
        if encoded is not None and encoded.value is value:
            return encoded
        return value

    def get_db_prep_value(self, value: Any, connection: Any, prepared: bool = False) -> Any:
        if isinstance(value, _Encoded):
            return connection.ops.adapt_json_value(value, _AsEncoded)
        return super().get_db_prep_value(value, connection, prepared)


def keep_encoding(row: models.Model, text: str) -> None:
    """Let the next write of ``row`` send ``text``, the JSON of ``row.data``, without encoding.

    ``text`` must decode to ``row.data``; ``None`` data is written as SQL ``NULL`` regardless.
    Replacing ``row.data`` before the write makes the write encode the new value instead. While
    a ``pre_save`` receiver listens for the row's model (it might change the data in place), the
    text is not kept.
    """
    data = row.__dict__["data"]
    if data is not None and not pre_save.has_listeners(type(row)):
        row.__dict__[_ENCODING] = _Encoded(data, text)
