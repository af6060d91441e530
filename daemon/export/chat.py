"""The chat format fine-tuning tools read: one `{"messages": [...]}` a line (mlx-lm, Unsloth, axolotl, TRL, OpenAI).

The shape checked here is what they all accept: an optional system message first, then user and
assistant taking turns, starting with the user and ending with the assistant's answer; every
content a string. (Chat templates such as Llama 2's and Mistral's raise an error when roles do not
alternate; mlx-lm and TRL apply the model's template to `messages` as they are.)
"""

from __future__ import annotations

import json
from typing import Any

ROLES = ("system", "user", "assistant")


def shape_problem(messages: Any) -> str | None:
    """Why `messages` is not a trainable chat (one sentence); None when it is."""
    if not isinstance(messages, list) or not messages:
        return "messages is not a non-empty list"
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or set(message) != {"role", "content"}:
            return f"message {i} is not an object with exactly role and content"
        if message["role"] not in ROLES or not isinstance(message["content"], str):
            return f"message {i} has role {message['role']!r} or content that is not text"
    turns = messages[1:] if messages[0]["role"] == "system" else messages
    expected = ["user" if i % 2 == 0 else "assistant" for i in range(len(turns))]
    if [m["role"] for m in turns] != expected or not turns or turns[-1]["role"] != "assistant":
        return "roles do not alternate user, assistant, … ending with the assistant"
    return None


def line(messages: list[dict[str, str]]) -> str:
    """One JSONL line."""
    return json.dumps({"messages": messages}, ensure_ascii=False)
