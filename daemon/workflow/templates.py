"""Jinja2 templates in a sandbox: paths and contents written by users, filled with run data."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import StrictUndefined, Template
from jinja2 import TemplateError as JinjaError
from jinja2.sandbox import SandboxedEnvironment
from slugify import slugify

from daemon.errors import TemplateError

SLUG_MAX = 80
# Below the 255-byte name limit with room for a suffix: `{{ x | slug }}.fields.txt` always fits.
SLUG_MAX_BYTES = 200
SLUG_EMPTY = "untitled"


def slug(value: Any) -> str:
    """Lowercase letters (of any script) and digits joined by single dashes: a safe file name, never empty.

    At most 80 characters and 200 bytes of UTF-8; no `/`, NUL, control characters or leading dot.
    Text with no letters or digits at all (emoji, punctuation) becomes `untitled-` and a digest
    of it, so different such names stay different; nothing at all becomes `untitled`.
    """
    text = "" if value is None else str(value)
    # Letters are kept, not transliterated: "株式会社トヨタ" stays readable instead of a Chinese reading.
    made = slugify(text, allow_unicode=True, max_length=SLUG_MAX)
    while len(made.encode("utf-8", "ignore")) > SLUG_MAX_BYTES:
        made = made[:-1].rstrip("-")
    if made:
        return made
    if not text.strip():
        return SLUG_EMPTY
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{SLUG_EMPTY}-{digest}"


class _Environment(SandboxedEnvironment):
    """A sandbox where `a.b` on a mapping means its key first, so `items`/`keys` data wins."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, Mapping) and isinstance(attribute, str):
            try:
                return obj[attribute]
            except (KeyError, TypeError):
                pass
        return super().getattr(obj, attribute)


def _finalize(value: Any) -> Any:
    # A null model answer (no label, missing field) renders as nothing rather than "None".
    return "" if value is None else value


ENVIRONMENT = _Environment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True, finalize=_finalize)
ENVIRONMENT.filters["slug"] = slug


@lru_cache(maxsize=1024)
def _compile(source: str) -> Template:
    template = ENVIRONMENT.from_string(source)
    # Jinja keeps a template's globals as a ChainMap over the environment's, whose keys every render
    # iterates twice (11 µs a render of a file name, 4.5 with a dict). The environment's are set once, above.
    template.globals = dict(template.globals)
    return template


def file_scope(path: Path, **fields: Any) -> dict[str, Any]:
    """What templates see of a file (`file`, a digest's items): its path and name parts, plus `fields`."""
    return {"path": str(path), "name": path.name, "stem": path.stem, "suffix": path.suffix, **fields}


def check_template(source: str) -> None:
    """Compile `source`; raises jinja2.TemplateSyntaxError when it is not a valid template."""
    _compile(source)


def render(source: str, context: Mapping[str, Any]) -> str:
    """Render `source` with `context`; raises TemplateError with one sentence on any failure."""
    if "{" not in source and "\r" not in source:
        # No tag can start without "{" (nor a newline be changed without "\r"): it renders as itself.
        return source
    try:
        return _compile(source).render(context)
    except JinjaError as exc:
        raise TemplateError(f"template '{_short(source)}' failed: {_reason(exc)}") from exc
    except Exception as exc:  # a template's own arithmetic or filter misuse: still the user's template
        raise TemplateError(f"template '{_short(source)}' failed: {type(exc).__name__}: {exc}") from exc


def _reason(exc: JinjaError) -> str:
    message = (exc.message or type(exc).__name__).rstrip(".")
    line = getattr(exc, "lineno", None)
    return f"{message} (template line {line})" if line and line > 1 else message


def _short(source: str, limit: int = 60) -> str:
    flat = " ".join(source.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
