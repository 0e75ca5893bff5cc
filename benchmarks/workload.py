"""The workload every measurement uses: order events carrying 1,000 bytes of JSON data."""

from __future__ import annotations

import json
from typing import Any, Final

EVENT_TYPE: Final = "bench.order.created"
SOURCE: Final = "https://shop.example.com/orders"
DATA_BYTES: Final = 1000


def payload(size: int = DATA_BYTES) -> dict[str, Any]:
    """Return an order-like dict whose compact JSON encoding is exactly ``size`` bytes long.

    Raises ``ValueError`` when ``size`` is too small to hold the fixed fields.
    """
    data: dict[str, Any] = {
        "order_id": 123456,
        "customer": "ada@example.com",
        "currency": "EUR",
        "lines": [
            {"sku": f"SKU-{n:04d}", "quantity": n % 3 + 1, "price": "19.99"} for n in range(8)
        ],
        "note": "",
    }
    padding = size - len(json.dumps(data, separators=(",", ":")))
    if padding < 0:
        raise ValueError(f"a payload needs at least {size - padding} bytes, not {size}")
    data["note"] = "x" * padding
    return data
