"""Images as model input: attached to the prompt in base64, recorded only as digests."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
from typing import Any

from daemon.domain import ModelCall

# What the prompt's document block says when the document is an image.
IMAGE_DOCUMENT = "(The document is the attached image.)"


def attach(messages: list[dict[str, Any]], images: tuple[bytes, ...]) -> list[dict[str, Any]]:
    """The messages with `images` (base64, as Ollama's API takes them) on the last user message."""
    encoded = [base64.b64encode(image).decode("ascii") for image in images]
    out = [dict(m) for m in messages]
    for message in reversed(out):
        if message.get("role") == "user":
            message["images"] = encoded
            break
    return out


def recordable(call: ModelCall) -> ModelCall:
    """A copy of `call` whose images are `{"image": sha256, "bytes": n}`: run records hold no image data."""
    if not any(m.get("images") for m in call.messages):
        return call
    messages = [_placeholders(m) if m.get("images") else m for m in call.messages]
    return dataclasses.replace(call, messages=messages)


def _placeholders(message: dict[str, Any]) -> dict[str, Any]:
    kept = []
    for image in message["images"]:
        data = base64.b64decode(image) if isinstance(image, str) else bytes(image)
        kept.append({"image": hashlib.sha256(data).hexdigest(), "bytes": len(data)})
    return {**message, "images": kept}
