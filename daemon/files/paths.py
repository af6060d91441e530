"""Turning rendered templates into paths that cannot leave their declared folder.

The folder a template names before its first tag is the *base*. What the template renders below
it is data (file names, model answers) and is treated as hostile: control characters are
removed, and a result that leaves the base, names an over-long file or passes through a symbolic
link below the base is refused with a sentence naming the path and the template.
"""

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
    base = Path(os.path.normpath(static_base(template).absolute()))
    text = os.path.expanduser(rendered)
    below = _below(text, base)
    cleaned = _FORBIDDEN.sub("", below if below is not None else text)
    path = base / cleaned if below is not None else Path(cleaned)
    path = path if path.is_absolute() else base / path
    resolved = Path(os.path.normpath(path))
    if resolved != base and base not in resolved.parents:
        raise UnsafePathError(
            f"the path {rendered!r} leaves its folder {base}; nothing was moved or written there "
            f"(check the template {template!r}, and pass model answers through '| slug')",
            rendered,
            base,
        )
    parts = resolved.relative_to(base).parts
    for part in parts:
        if len(part.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES:
            raise UnsafePathError(
                f"the name {part[:40]!r}… in the path made by {template!r} is longer than 255 bytes; "
                "shorten it in the template (e.g. with '| truncate(100)')",
                rendered,
                base,
            )
    _refuse_links(base, parts, template)
    return resolved


def _below(text: str, base: Path) -> str | None:
    """The part of `text` after `base` when `text` starts with it (so only that part is cleaned)."""
    prefix = str(base).rstrip("/") + "/"
    absolute = text if os.path.isabs(text) else str(base / text)
    return absolute[len(prefix):] if absolute.startswith(prefix) else None


def _refuse_links(base: Path, parts: tuple[str, ...], template: str) -> None:
    # normpath does not see symlinks: a link below the base would carry the path out of it.
    here = base
    for part in parts:
        here = here / part
        if here.is_symlink():
            raise UnsafePathError(
                f"{here} is a symbolic link, so the path made by {template!r} could leave {base}; "
                "gristmill does not follow links",
                str(here),
                base,
            )
        if not here.exists():
            return


def safe_name(name: str, fallback: str = "unnamed") -> str:
    """A file name with separators, control characters and leading dots removed, at most 255 bytes."""
    cleaned = _FORBIDDEN.sub("", name.replace("/", "_").replace("\\", "_")).strip().lstrip(".")
    cleaned = cleaned or fallback
    while len(cleaned.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES:
        cleaned = cleaned[:-1]
    return cleaned
