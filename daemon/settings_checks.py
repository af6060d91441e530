"""Checking settings values and saying what is wrong with one in a sentence (no environment access)."""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
from enum import Enum
from pathlib import Path
from typing import Any, get_args, get_origin
from urllib.parse import urlsplit

from pydantic.fields import FieldInfo

from daemon.errors import SettingsError
from daemon.netguard import Network

# host, host:port, [v6]:port — what OLLAMA_HOST commonly holds without a scheme.
_BARE_HOST = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.\-]+)(:\d{1,5})?/?$")
_MODEL_URL_EXAMPLE = "http://HOST:PORT, such as http://127.0.0.1:11434"
_DATABASE_URL_EXAMPLE = "a SQLAlchemy URL such as sqlite:////path/to/gristmill.db or postgresql+psycopg://user@host/db"


def model_url(value: str) -> str:
    """`value` when it is an http(s) URL or a bare `host[:port]` (as OLLAMA_HOST allows); else ValueError."""
    text = value.strip()
    if "://" in text:
        parts = urlsplit(text)
        if parts.scheme not in ("http", "https") or not parts.hostname or " " in text:
            raise ValueError(f"{value!r} is not an http URL; expected {_MODEL_URL_EXAMPLE}")
    elif not _BARE_HOST.match(text):
        raise ValueError(f"{value!r} is not a URL; expected {_MODEL_URL_EXAMPLE}")
    else:
        parts = urlsplit(f"http://{text}")
    try:
        parts.port  # noqa: B018  (raises for a port out of range)
    except ValueError:
        raise ValueError(f"{value!r} has a port outside 1-65535; expected {_MODEL_URL_EXAMPLE}") from None
    return text


def database_url(value: str | None) -> str | None:
    """`value` when SQLAlchemy can parse it and knows its kind of database; else ValueError."""
    if value is None:
        return None
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        url = make_url(value)
    except ArgumentError:
        raise ValueError(f"{value!r} is not a database URL; expected {_DATABASE_URL_EXAMPLE}") from None
    try:
        url.get_dialect()
    except NoSuchModuleError:
        raise ValueError(
            f"{value!r} names a kind of database SQLAlchemy does not know ({url.drivername}); "
            f"expected {_DATABASE_URL_EXAMPLE}"
        ) from None
    return value


def networks(value: Any) -> list[Network]:
    """CIDR ranges from a list or a comma/space-separated string; ValueError naming a bad one."""
    items = re.split(r"[,\s]+", value) if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)):
        raise ValueError(f"expected a list of networks such as 100.64.0.0/10, got {value!r}")  # noqa: TRY004 (pydantic reports ValueError only)
    found = []
    for item in items:
        if not isinstance(item, str):
            raise ValueError(f"{item!r} is not a network; expected CIDR ranges such as 100.64.0.0/10")  # noqa: TRY004
        if item.strip():
            found.append(_network(item.strip()))
    return found


def _network(text: str) -> Network:
    try:
        return ipaddress.ip_network(text)
    except ValueError as exc:
        try:
            meant = ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise ValueError(f"{text!r} is not a network in CIDR notation, such as 100.64.0.0/10") from exc
        raise ValueError(f"{text!r} has host bits set; did you mean {meant}?") from exc


def data_dir_problem(path: Path) -> str | None:
    """Why `path` cannot be (or become) the data folder, or None when it can."""
    try:
        if path.exists():
            return None if path.is_dir() else f"{path} is a file, not a folder"
        existing = path
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        if not existing.is_dir():
            return f"{path} cannot be created because {existing} is a file, not a folder"
        if not os.access(existing, os.W_OK | os.X_OK):
            return f"{path} cannot be created because you may not write in {existing}"
    except OSError as exc:
        return f"{path} cannot be used ({exc.strerror})"
    return None


def unknown_keys(data: dict[str, Any], allowed: list[str], path: Path) -> None:
    """Raise `SettingsError` for the first key of the settings file that is not a setting."""
    for key in data:
        if key in allowed:
            continue
        close = difflib.get_close_matches(key, allowed, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else f"; the settings are: {', '.join(allowed)}"
        raise SettingsError(f"unknown setting '{key}' in {path}{hint}", path)


_EXPECTED = {"int": "a whole number", "float": "a number", "bool": "true or false", "string": "text",
             "list": "a list", "dict": "a table", "tuple": "a list"}  # fmt: skip


def explain(error: dict[str, Any], field: FieldInfo | None) -> str:
    """What a pydantic error on one setting (or a key inside one) means, as the second half of a sentence."""
    kind, loc = error["type"], error["loc"]
    if kind == "value_error":
        return str(error["ctx"]["error"])
    if kind == "missing":
        return f"'{loc[-1]}' is missing"
    if kind == "extra_forbidden":
        return f"'{loc[-1]}' is not one of its keys"
    if len(loc) == 1 and field is not None:
        return f"expected {expected(field)}, got {error['input']!r}"
    words = _EXPECTED.get(kind.split("_")[0])
    return f"expected {words}, got {error['input']!r}" if words else f"{error['msg']} (got {error['input']!r})"


def expected(field: FieldInfo) -> str:
    """What a setting takes, in words: 'a whole number, at least 1 and at most 256'."""
    kind = _kind(field.annotation)
    bounds = []
    for rule in field.metadata:
        for attr, words in (("ge", "at least"), ("gt", "more than"), ("le", "at most"), ("lt", "less than")):
            if getattr(rule, attr, None) is not None:
                bounds.append(f"{words} {getattr(rule, attr)}")
    return f"{kind}, {' and '.join(bounds)}" if bounds else kind


def _kind(annotation: Any) -> str:
    args = [a for a in get_args(annotation) if a is not type(None)]
    if get_origin(annotation) is tuple:
        return "a list of CIDR ranges such as 100.64.0.0/10"
    if get_origin(annotation) is list:
        return "a list"
    if get_origin(annotation) is dict:
        return "a table"
    if get_origin(annotation) is not None and len(args) == 1:
        annotation = args[0]
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return "one of " + ", ".join(str(m.value) for m in annotation)
    words = {bool: "true or false", int: "a whole number", float: "a number", Path: "a path", str: "text"}
    return words.get(annotation, "a valid value")
