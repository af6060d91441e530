"""What an HTTP hook request carries, decided without a web framework: a typed body or a typed refusal.

The web server calls `precheck` before it reads the body (method, token, declared length, content
type: a refused request costs no memory) and `parse_body` on the body it read, capped at
`limits.max_bytes`; `parse_hook` is both in one. Nothing here touches the disk or the run store.
"""

from __future__ import annotations

import hmac
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import parse_qsl

from python_multipart.multipart import parse_options_header

from daemon.inbound.multipart import MalformedMultipart, parse_multipart

JSON_TYPES = ("application/json",)
FORM_TYPE = "application/x-www-form-urlencoded"
MULTIPART_TYPE = "multipart/form-data"
# Raw files the extractors read; the suffix tells them what the bytes are.
FILE_TYPES = {
    "application/pdf": ".pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
    "message/rfc822": ".eml",
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/gif": ".gif",
    "image/webp": ".webp",
    "application/octet-stream": ".bin",
}
TEXT_SUFFIXES = {"text/markdown": ".md", "text/html": ".html", "text/csv": ".csv", "text/xml": ".xml"}
_SUFFIX = re.compile(r"^\.[a-z0-9]{1,10}$")
ACCEPTED = "text/*, application/json, application/x-www-form-urlencoded, multipart/form-data (one file) or a file type"


class BodyKind(StrEnum):
    TEXT = "text"
    JSON = "json"
    FILE = "file"


@dataclass(frozen=True)
class HookLimits:
    """How much a hook takes: `GRISTMILL_MAX_FILE_BYTES`."""

    max_bytes: int


@dataclass(frozen=True)
class HookBody:
    """The accepted body: the bytes to store and run on, what they are, and the parsed JSON when JSON."""

    kind: BodyKind
    data: bytes
    content_type: str  # the media type, lower-case, without parameters
    filename: str | None = None  # the sender's file name (multipart or Content-Disposition), base name only
    json: Any = None  # the parsed object when kind is JSON (form fields become a JSON object)
    fields: Mapping[str, str] = field(default_factory=dict)  # the plain fields beside a multipart file

    @property
    def suffix(self) -> str:
        """The file suffix to store the body under: from the file name when sensible, else from the type."""
        if self.filename:
            suffix = os.path.splitext(self.filename)[1].lower()
            if _SUFFIX.match(suffix):
                return suffix
        if self.kind is BodyKind.JSON:
            return ".json"
        if self.kind is BodyKind.TEXT:
            return TEXT_SUFFIXES.get(self.content_type, ".txt")
        return FILE_TYPES.get(self.content_type, ".bin")


@dataclass(frozen=True)
class HookRefusal:
    """The answer to a refused request: a status, one sentence for the caller, and any headers it needs."""

    status: int
    message: str
    headers: tuple[tuple[str, str], ...] = ()


def _refuse_auth() -> HookRefusal:
    return HookRefusal(401, "this hook needs the header Authorization: Bearer <token>, with the right token",
                       (("WWW-Authenticate", 'Bearer realm="gristmill"'),))  # fmt: skip


def _headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def media_type(content_type: str) -> str:
    """`text/plain; charset=utf-8` → `text/plain`."""
    kind, _ = parse_options_header(content_type)
    return kind.decode("latin-1").strip().lower()


def authorize(headers: Mapping[str, str], token: str | None) -> HookRefusal | None:
    """None when the request carries `Bearer <token>`; compared in constant time. No token set: all refused."""
    given = _headers(headers).get("authorization", "")
    scheme, _, credentials = given.strip().partition(" ")
    if not token or scheme.lower() != "bearer":
        return _refuse_auth()
    if not hmac.compare_digest(credentials.strip().encode(), token.encode()):
        return _refuse_auth()
    return None


def _accepted(kind: str) -> bool:
    return (
        kind.startswith("text/") or kind in JSON_TYPES or kind.endswith("+json")
        or kind in (FORM_TYPE, MULTIPART_TYPE) or kind in FILE_TYPES
    )  # fmt: skip


def precheck(method: str, headers: Mapping[str, str], token: str | None, limits: HookLimits) -> HookRefusal | None:
    """What can be refused before reading the body: method, token, declared length, content type."""
    if method.upper() != "POST":
        return HookRefusal(405, "a hook takes POST only", (("Allow", "POST"),))
    refused = authorize(headers, token)
    if refused is not None:
        return refused
    lower = _headers(headers)
    declared = lower.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            return HookRefusal(400, "the Content-Length header is not a number")
        if int(declared) > limits.max_bytes:
            return _too_large(int(declared), limits)
    kind = media_type(lower.get("content-type", ""))
    if not _accepted(kind):
        what = f"the content type {kind}" if kind else "a body without a Content-Type"
        return HookRefusal(415, f"{what} is not taken; send {ACCEPTED}")
    return None


def _too_large(size: int, limits: HookLimits) -> HookRefusal:
    return HookRefusal(
        413, f"the body is {size} bytes, over the limit of {limits.max_bytes} (GRISTMILL_MAX_FILE_BYTES)"
    )


def parse_body(headers: Mapping[str, str], body: bytes, limits: HookLimits) -> HookBody | HookRefusal:
    """The body as text, JSON (form fields too) or one file; a 400/413/415 refusal otherwise."""
    if len(body) > limits.max_bytes:
        return _too_large(len(body), limits)
    if not body:
        return HookRefusal(400, "the body is empty; there is nothing to run on")
    lower = _headers(headers)
    content_type = lower.get("content-type", "")
    kind = media_type(content_type)
    if kind in JSON_TYPES or kind.endswith("+json"):
        return _json_body(body, kind)
    if kind == FORM_TYPE:
        return _form_body(body)
    if kind == MULTIPART_TYPE:
        return _multipart_body(content_type, body)
    if kind.startswith("text/"):
        return HookBody(BodyKind.TEXT, body, kind, _disposition_name(lower))
    if kind in FILE_TYPES:
        return HookBody(BodyKind.FILE, body, kind, _disposition_name(lower))
    return HookRefusal(415, f"the content type {kind or '(none)'} is not taken; send {ACCEPTED}")


def parse_hook(
    method: str, headers: Mapping[str, str], body: bytes, *, token: str | None, limits: HookLimits
) -> HookBody | HookRefusal:
    """`precheck`, then `parse_body`."""
    return precheck(method, headers, token, limits) or parse_body(headers, body, limits)


def _json_body(body: bytes, kind: str) -> HookBody | HookRefusal:
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        where = f" (line {exc.lineno}, column {exc.colno})" if isinstance(exc, json.JSONDecodeError) else ""
        return HookRefusal(400, f"the body is not valid JSON{where}")
    return HookBody(BodyKind.JSON, body, kind, json=value)


def _form_body(body: bytes) -> HookBody | HookRefusal:
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True, max_num_fields=1000)
    except (UnicodeDecodeError, ValueError):
        return HookRefusal(400, "the body is not form data; to send a file use curl -F file=@NAME or "
                           "--data-binary @NAME with its own Content-Type")  # fmt: skip
    fields: dict[str, Any] = {}
    for name, value in pairs:
        fields.setdefault(name, []).append(value)
    flat = {name: values[0] if len(values) == 1 else values for name, values in fields.items()}
    # Stored as JSON with sorted keys, so the same form twice is the same content (and runs once).
    data = json.dumps(flat, ensure_ascii=False, sort_keys=True).encode()
    return HookBody(BodyKind.JSON, data, "application/json", json=flat)


def _multipart_body(content_type: str, body: bytes) -> HookBody | HookRefusal:
    try:
        parts = parse_multipart(content_type, body)
    except MalformedMultipart as exc:
        return HookRefusal(400, f"the multipart body is malformed: {exc}")
    files = [part for part in parts if part.filename is not None]
    if len(files) != 1:
        return HookRefusal(400, f"a multipart body takes exactly one file part, this one has {len(files)}; "
                           "send one file, such as curl -F file=@invoice.pdf")  # fmt: skip
    fields = {p.name: bytes(p.data).decode("utf-8", "replace") for p in parts if p.filename is None and p.name}
    part = files[0]
    return HookBody(BodyKind.FILE, bytes(part.data), part.content_type, _base_name(part.filename), fields=fields)


def _disposition_name(headers: Mapping[str, str]) -> str | None:
    raw = headers.get("content-disposition")
    if not raw:
        return None
    _, params = parse_options_header(raw)
    name = params.get(b"filename")
    return _base_name(name.decode("utf-8", "replace")) if name else None


def _base_name(name: str | None) -> str | None:
    """The last path component, without control characters: a sender's name never chooses a folder."""
    if not name:
        return None
    base = re.split(r"[\\/]", name)[-1]
    base = "".join(c for c in base if c.isprintable()).strip()[:200]
    return base if base not in ("", ".", "..") else None
