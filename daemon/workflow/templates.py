"""Jinja2 templates in a sandbox: paths and contents written by users, filled with run data."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import StrictUndefined, Template
from jinja2 import TemplateError as JinjaError
from jinja2.sandbox import SandboxedEnvironment

from daemon.errors import TemplateError

SLUG_MAX = 80


def slug(value: Any) -> str:
    """Lowercase ASCII letters and digits joined by single dashes, at most 80 characters."""
    text = unicodedata.normalize("NFKD", "" if value is None else str(value))
    text = text.encode("ascii", "ignore").decode("ascii").lower()
    text = re.sub(r"[^a-z0-9]+", "-", text).strip("-")
    return text[:SLUG_MAX].rstrip("-")


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


ENVIRONMENT = _Environment(
    undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True, finalize=_finalize
)
ENVIRONMENT.filters["slug"] = slug


@lru_cache(maxsize=1024)
def _compile(source: str) -> Template:
    return ENVIRONMENT.from_string(source)


def file_scope(path: Path, **fields: Any) -> dict[str, Any]:
    """What templates see of a file (`file`, a digest's items): its path and name parts, plus `fields`."""
    return {"path": str(path), "name": path.name, "stem": path.stem, "suffix": path.suffix, **fields}


def check_template(source: str) -> None:
    """Compile `source`; raises jinja2.TemplateSyntaxError when it is not a valid template."""
    _compile(source)


def render(source: str, context: Mapping[str, Any]) -> str:
    """Render `source` with `context`; raises TemplateError with one sentence on any failure."""
    try:
        return _compile(source).render(dict(context))
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
