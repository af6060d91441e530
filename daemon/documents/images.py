"""What can be told about a PNG or JPEG without decoding it."""

from __future__ import annotations

import struct
from typing import Any


def describe(data: bytes) -> dict[str, Any]:
    """Format, width and height (when the header says), and size in bytes."""
    meta: dict[str, Any] = {"bytes": len(data)}
    if data.startswith(b"\x89PNG") and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return meta | {"format": "png", "width": width, "height": height}
    return meta | {"format": "jpeg"}
