"""Turning rendered templates into paths that cannot leave their declared folder."""

from __future__ import annotations

import os
import re
from pathlib import Path

from daemon.errors import UnsafePathError

MAX_NAME_BYTES = 255
_TEMPLATE_START = re.compile(r"\{\{|\{%")
_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f]")


def static_base(template: str) -> Path:
    """The folder a path template declares: everything before the first template tag."""
    match = _TEMPLATE_START.search(template)
    fixed = template if match is None else template[: match.start()]
    if match is not None:
        fixed = fixed.rsplit("/", 1)[0] if "/" in fixed else "."
    return Path(os.path.expanduser(fixed or "."))


def confine(rendered: str, template: str) -> Path:
    """The absolute path `rendered` names, refused when it leaves the template's static folder."""
    if _FORBIDDEN.search(rendered):
        raise UnsafePathError(f"the path {rendered!r} contains control characters", rendered)
    base = static_base(template).absolute()
    path = Path(os.path.expanduser(rendered))
    path = path if path.is_absolute() else base / path
    resolved = Path(os.path.normpath(path))
    norm_base = Path(os.path.normpath(base))
    if resolved != norm_base and norm_base not in resolved.parents:
        raise UnsafePathError(
            f"the path {rendered!r} leaves its folder {norm_base}; check the template {template!r}",
            rendered,
            norm_base,
        )
    for part in resolved.relative_to(norm_base).parts:
        if len(part.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES:
            raise UnsafePathError(f"a name in the path {rendered!r} is longer than 255 bytes", rendered)
    return resolved


def safe_name(name: str, fallback: str = "unnamed") -> str:
    """A file name with separators, control characters and leading dots removed, at most 255 bytes."""
    cleaned = _FORBIDDEN.sub("", name.replace("/", "_").replace("\\", "_")).strip().lstrip(".")
    cleaned = cleaned or fallback
    while len(cleaned.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES:
        cleaned = cleaned[:-1]
    return cleaned
