"""Turning rendered templates into paths that cannot leave their declared folder.

The folder a template names before its first tag is the *base*. What the template renders below
it is data (file names, model answers) and is treated as hostile: control characters are
removed, and a result that leaves the base, names an over-long file or passes through a symbolic
link below the base is refused with a sentence naming the path and the template.
"""

from __future__ import annotations

import os
import re
import stat
from functools import lru_cache
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


def folder_template(template: str) -> str:
    """The folder part of a file path template (a tag that holds a slash is cut by `static_base` anyway)."""
    head, slash, _ = template.rpartition("/")
    return (head or "/") if slash else "."


def confine(rendered: str, template: str) -> Path:
    """The absolute path `rendered` names, refused when it leaves the template's static folder."""
    base = _base(template)
    text = os.path.expanduser(rendered)
    below = _below(text, base)
    cleaned = _FORBIDDEN.sub("", below if below is not None else text)
    path = os.path.join(base, cleaned) if below is not None or not os.path.isabs(cleaned) else cleaned
    resolved = os.path.normpath(path)
    inside = _inside(base)
    if resolved != base and not resolved.startswith(inside):
        raise UnsafePathError(
            f"the path {rendered!r} leaves its folder {base}; nothing was moved or written there "
            f"(check the template {template!r}, and pass model answers through '| slug')",
            rendered,
            Path(base),
        )
    parts = resolved[len(inside) :].split("/") if resolved != base else []
    for part in parts:
        if len(part.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES:
            raise UnsafePathError(
                f"the name {part[:40]!r}… in the path made by {template!r} is longer than 255 bytes; "
                "shorten it in the template (e.g. with '| truncate(100)')",
                rendered,
                Path(base),
            )
    _refuse_links(base, parts, template)
    return Path(resolved)


def _base(template: str) -> str:
    """The template's static folder, absolute and normalised."""
    home = os.path.expanduser("~")
    # The working folder (a system call) is asked for only when the folder is relative to it.
    return _absolute_base(template, home) or _base_in(template, home, os.getcwd())


@lru_cache(maxsize=1024)
def _absolute_base(template: str, home: str) -> str | None:
    # Templates are few and this runs for every move and write: worked out once per home.
    base = static_base(template)
    return os.path.normpath(base) if base.is_absolute() else None


@lru_cache(maxsize=1024)
def _base_in(template: str, home: str, cwd: str) -> str:
    return os.path.normpath(os.path.abspath(static_base(template)))


def _inside(base: str) -> str:
    return base.rstrip("/") + "/"


def _below(text: str, base: str) -> str | None:
    """The part of `text` after `base` when `text` starts with it (so only that part is cleaned)."""
    absolute = text if os.path.isabs(text) else os.path.join(base, text)
    prefix = _inside(base)
    return absolute[len(prefix) :] if absolute.startswith(prefix) else None


def _refuse_links(base: str, parts: list[str], template: str) -> None:
    # normpath does not see symlinks: a link below the base would carry the path out of it.
    here = base
    for part in parts:
        here = os.path.join(here, part)
        try:
            mode = os.lstat(here).st_mode
        except OSError:
            return  # not there yet: nothing below it can be a link either
        if stat.S_ISLNK(mode):
            raise UnsafePathError(
                f"{here} is a symbolic link, so the path made by {template!r} could leave {base}; "
                "gristmill does not follow links",
                here,
                Path(base),
            )
