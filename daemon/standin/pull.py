"""Ollama's /api/pull: name checks, the errors Ollama gives, and the progress lines of a download.

A valid name (names.py) is found when the `pullable` switch is None (the default) or lists it; a
`hf.co/{user}/{repo}` name also needs `latest` or a quantisation as its tag. Errors, as Ollama gives them:
- invalid name: 400 {"error": "invalid model name"} (before any progress line);
- not found: streaming, 200 with {"status": "pulling manifest"} then {"error": "pull model manifest:
  file does not exist"}; with stream false, 500 with that error; a Hugging Face tag that is no
  quantisation gives HF_BAD_TAG instead.
A found model streams: "pulling manifest"; per layer (the model file, then for library models its
template, license and params) `pull_steps` lines {"status": "pulling <12 hex>", "digest": "sha256:...",
"total": N, "completed": N x i / pull_steps}; "verifying sha256 digest"; "writing manifest"; "success".
`pull_interval` seconds pass before every line. The model is installed (listed by /api/tags) just
before "success"; with stream false the answer is {"status": "success"} after the same total time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from daemon.standin import names
from daemon.standin.config import StandinConfig

INVALID_NAME = "invalid model name"
NOT_FOUND = "pull model manifest: file does not exist"
HF_BAD_TAG = (
    'pull model manifest: 400: {"error":"The specified tag is not a valid quantization scheme. '
    'Please use another tag or \\"latest\\""}'
)
_SMALL_LAYERS = (("template", 1_404), ("license", 7_712), ("params", 96))


def problem(name: names.ModelName, config: StandinConfig) -> str | None:
    """Why Ollama would not find the model, or None when it would."""
    if config.pullable is not None and name.key not in {names.name_key(n) for n in config.pullable}:
        return NOT_FOUND
    if name.on_hugging_face and name.tag.lower() != "latest" and not names.is_quantization(name.tag):
        return HF_BAD_TAG
    return None


def progress(name: names.ModelName, steps: int, install: Callable[[], None]) -> list[Any]:
    """The progress lines of a successful pull; the last one installs the model when it is due."""
    steps = max(1, steps)
    lines: list[Any] = [{"status": "pulling manifest"}]
    for layer, total in _layers(name):
        digest = "sha256:" + hashlib.sha256(f"{name.key}/{layer}".encode()).hexdigest()
        lines += [
            {"status": f"pulling {digest[7:19]}", "digest": digest, "total": total, "completed": total * i // steps}
            for i in range(1, steps + 1)
        ]
    lines += [{"status": "verifying sha256 digest"}, {"status": "writing manifest"}]

    def success() -> dict[str, Any]:
        install()
        return {"status": "success"}

    return [*lines, success]


def _layers(name: names.ModelName) -> list[tuple[str, int]]:
    model = ("model", names.file_size(name.shortest))
    return [model] if name.on_hugging_face else [model, *_SMALL_LAYERS]
