"""`model: NAME` or `model: NAME@SERVER`: which model, and whether it is pinned to one server."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass


@dataclass(frozen=True)
class ModelRef:
    """A model name and the one server it must run on, if pinned."""

    name: str
    server: str | None = None

    def __str__(self) -> str:
        return f"{self.name}@{self.server}" if self.server else self.name


def parse_model(text: str) -> ModelRef:
    """Split at the last `@`: the part after it names a server.

    A model whose own name holds an `@` (LM Studio's `qwen3-8b@q4_k_m`) is therefore written pinned:
    `qwen3-8b@q4_k_m@lmstudio`.
    """
    name, at, server = text.rpartition("@")
    return ModelRef(name, server) if at and name and server else ModelRef(text)


def unknown_server(text: str, servers: Collection[str]) -> str | None:
    """The problem with `text`'s `@SERVER` when no such server is configured, else None."""
    ref = parse_model(text)
    if ref.server is None or ref.server in servers:
        return None
    return (f"'{ref.server}' after @ is not a configured model server (servers: {', '.join(sorted(servers))}); "
            "a model whose own name has an @ is written NAME@SERVER")  # fmt: skip
