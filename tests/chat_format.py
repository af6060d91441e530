"""What the fine-tuning tools read, checked without installing them (trl and mlx-lm pull in torch or mlx).

From their sources: mlx-lm (`mlx_lm/tuner/datasets.py`) reads `train.jsonl` and `valid.jsonl` line
by line with `json.loads`, takes a file whose first record has a `messages` key as a chat dataset,
refuses an empty training or validation set, and applies the model's chat template to the messages
as they are. TRL (`trl/data_utils.py: is_conversational`) takes a record as a conversation when its
`messages` is a list of objects with `role` and `content`. Chat templates of the Llama 2 and Mistral
families raise "Conversation roles must alternate user/assistant/user/assistant/..." otherwise;
the template below is that rule, rendered with Jinja2 as transformers renders templates.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jinja2 import StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

STRICT_TEMPLATE = (
    "{% if messages[0]['role'] == 'system' %}{% set rest = messages[1:] %}{% set system = messages[0]['content'] %}"
    "{% else %}{% set rest = messages %}{% set system = '' %}{% endif %}"
    "{% for message in rest %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if message['role'] == 'user' %}[INST] {% if loop.first and system %}{{ system }}\n\n{% endif %}"
    "{{ message['content'] }} [/INST]{% else %}{{ message['content'] }}</s>{% endif %}"
    "{% endfor %}"
)


class TemplateRefused(Exception):
    pass


def _raise(message: str) -> None:
    raise TemplateRefused(message)


def render(messages: list[dict[str, Any]]) -> str:
    """The strict chat template applied to `messages`; TemplateRefused when roles do not alternate."""
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, undefined=StrictUndefined)
    env.globals["raise_exception"] = _raise
    return env.from_string(STRICT_TEMPLATE).render(messages=messages)


def is_conversational(record: dict[str, Any]) -> bool:
    """TRL's rule for a conversational record."""
    messages = record.get("messages")
    return (
        isinstance(messages, list)
        and bool(messages)
        and all(isinstance(m, dict) and "role" in m and "content" in m for m in messages)
    )


def check_folder(folder: Path) -> int:
    """Every line of train.jsonl and valid.jsonl as mlx-lm and TRL would take it; the number of records."""
    total = 0
    for name in ("train.jsonl", "valid.jsonl"):
        records = [json.loads(text) for text in (folder / name).read_text(encoding="utf-8").splitlines()]
        assert records, f"{name} is empty; mlx-lm refuses an empty set"
        assert "messages" in records[0]  # mlx-lm: a chat dataset
        for record in records:
            assert set(record) == {"messages"} and is_conversational(record)
            assert record["messages"][-1]["role"] == "assistant"
            assert render(record["messages"]).endswith("</s>")  # the answer is what the model learns
        total += len(records)
    return total
