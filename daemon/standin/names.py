"""Ollama's model names, and the facts the stand-in derives from a name alone.

A name is `[host/][namespace/]model[:tag]` (Ollama's `types/model/name.go`): the defaults are
`registry.ollama.ai`, `library` and `latest`; every part starts with a letter, digit or `_` and goes on
with letters, digits, `_`, `-` and `.` (no `.` in a namespace; `:` only in the host); the host has at
most 350 characters, the other parts 80. A `@digest` suffix is ignored. Names compare without case.
Ollama shows the shortest form: `llama3.2:latest`, `bob/tiny:1b`, `hf.co/bob/Tiny-GGUF:Q4_K_M`.

Derived, deterministically:
- parameter size: the first `<number>b` or `<number>m` part of the name (`qwen3:8b` -> "8B",
  `Llama-3.2-1B-Instruct` -> "1B", `gemma3:270m` -> "270M"), else "3.2B";
- quantisation: a quantisation name ending the tag (`Q8_0`, `q4_K_M`, `8b-instruct-q5_K_S`,
  `fp16` -> "F16"), else "Q4_K_M";
- file size: parameters x bits per weight of that quantisation / 8.
On `hf.co/{user}/{repo}` names the tag must be `latest` or a quantisation name (`:Q4_K_M`, `:IQ3_M`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_HOST = "registry.ollama.ai"
DEFAULT_NAMESPACE = "library"
DEFAULT_TAG = "latest"
DEFAULT_PARAMETERS = "3.2B"
DEFAULT_QUANT = "Q4_K_M"
HF_HOSTS = frozenset({"hf.co", "huggingface.co"})

_QUANT_NAME = r"(i?q\d+(?:_[a-z0-9]+)*|bf16|fp16|f16|fp32|f32)"
_QUANT = re.compile(rf"(?:^|[-_.]){_QUANT_NAME}$", re.IGNORECASE)
_PARAMS = re.compile(r"(?:^|[-_.:/])(\d+(?:\.\d+)?)([bm])(?=$|[-_.:])", re.IGNORECASE)
_BITS = (("F32", 32.0), ("FP32", 32.0), ("F16", 16.0), ("BF16", 16.0), ("FP16", 16.0), ("Q8", 8.5),
         ("Q6", 6.6), ("Q5", 5.7), ("Q4", 4.85), ("Q3", 3.9), ("Q2", 2.6), ("IQ4", 4.4), ("IQ3", 3.4),
         ("IQ2", 2.4), ("IQ1", 1.6))  # fmt: skip


@dataclass(frozen=True)
class ModelName:
    """A parsed, valid model name with Ollama's defaults filled in."""

    host: str
    namespace: str
    model: str
    tag: str

    @property
    def shortest(self) -> str:
        """Ollama's display form: host and namespace only when they are not the defaults."""
        if self.host.lower() != DEFAULT_HOST:
            return f"{self.host}/{self.namespace}/{self.model}:{self.tag}"
        if self.namespace.lower() != DEFAULT_NAMESPACE:
            return f"{self.namespace}/{self.model}:{self.tag}"
        return f"{self.model}:{self.tag}"

    @property
    def key(self) -> str:
        """What names compare by."""
        return self.shortest.lower()

    @property
    def on_hugging_face(self) -> bool:
        """Whether the name points at a Hugging Face repository (`hf.co/{user}/{repo}`)."""
        return self.host.lower() in HF_HOSTS


def parse_name(text: str) -> ModelName | None:
    """The name with defaults filled in, or None when Ollama would call it invalid."""
    rest = text.strip().split("@", 1)[0]
    tag = host = namespace = ""
    if rest.rfind(":") > rest.rfind("/"):
        rest, tag = rest.rsplit(":", 1)
        if not rest or not tag:
            return None
    parts = rest.split("/")
    if len(parts) > 3 or not all(parts):
        if len(parts) < 3 or "://" not in rest:
            return None
        scheme_host, namespace, model = rest.rsplit("/", 2)
        host = scheme_host.split("://", 1)[1]
    else:
        model = parts[-1]
        namespace = parts[-2] if len(parts) > 1 else ""
        host = parts[-3] if len(parts) > 2 else ""
    name = ModelName(host or DEFAULT_HOST, namespace or DEFAULT_NAMESPACE, model, tag or DEFAULT_TAG)
    return name if _valid(name) else None


def display(text: str) -> str:
    """Ollama's shortest form of a name; an invalid one as given, with ":latest" when it lacks a tag."""
    if parsed := parse_name(text):
        return parsed.shortest
    text = text.strip()
    return text if ":" in text.rsplit("/", 1)[-1] else f"{text}:{DEFAULT_TAG}"


def name_key(text: str) -> str:
    """What two names compare by ("llama3.2" and "library/llama3.2:latest" are the same)."""
    return display(text).lower()


def quantization(text: str) -> str:
    """The quantisation a name's tag names, else Ollama's usual Q4_K_M."""
    tag = parsed.tag if (parsed := parse_name(text)) else text.rsplit(":", 1)[-1]
    found = _QUANT.search(tag)
    if not found:
        return DEFAULT_QUANT
    quant = found.group(1).upper()
    return {"FP16": "F16", "FP32": "F32"}.get(quant, quant)


def is_quantization(tag: str) -> bool:
    """Whether a tag is a quantisation name (what a Hugging Face pull needs, besides "latest")."""
    return re.fullmatch(_QUANT_NAME, tag, re.IGNORECASE) is not None


def parameter_size(text: str) -> str:
    """The parameter size a name says ("8B", "270M"), else 3.2B."""
    found = _PARAMS.search(display(text))
    return f"{found.group(1)}{found.group(2).upper()}" if found else DEFAULT_PARAMETERS


def parameter_count(text: str) -> int:
    """Parameters as a number: "3.2B" -> 3_200_000_000."""
    size = parameter_size(text)
    return round(float(size[:-1]) * (1e9 if size.endswith("B") else 1e6))


def file_size(text: str) -> int:
    """Bytes of the model file: parameters x bits per weight / 8."""
    quant = quantization(text)
    bits = next((b for prefix, b in _BITS if quant.startswith(prefix)), 4.85)
    return round(parameter_count(text) * bits / 8)


def _valid(name: ModelName) -> bool:
    return (
        _part_ok(name.host, 350, ".:")
        and _part_ok(name.namespace, 80, "")
        and _part_ok(name.model, 80, ".")
        and _part_ok(name.tag, 80, ".")
    )


def _part_ok(part: str, longest: int, extra: str) -> bool:
    if not 1 <= len(part) <= longest or not (part[0].isascii() and (part[0].isalnum() or part[0] == "_")):
        return False
    allowed = "_-" + extra
    return all(c.isascii() and (c.isalnum() or c in allowed) for c in part[1:])
