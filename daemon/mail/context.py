"""A mail run's context: the message's key (so route actions find it again) and what templates see as `mail`.

The key is recorded with the run when the message is queued; `message_key` reads it back for the
mail route actions, `mail_scope` shapes it for templates (`{{ mail.subject }}`, `{{ mail.from }}`).
"""

from __future__ import annotations

from collections.abc import Mapping
from email import policy
from email.parser import BytesHeaderParser
from typing import Any

from daemon.mail.keys import MessageKey

CONTEXT_KEY = "mail"  # the run context's key, and the template name
TEXT_MAX = 300  # characters of a header kept in the context: a subject, not a hostile megabyte
_HEADERS = {"subject": "Subject", "from": "From", "to": "To", "date": "Date"}
_KEY_FIELDS = ("mailbox", "folder", "uidvalidity", "uid", "message_id", "sha256", "size")


def mail_context(key: MessageKey, data: bytes = b"") -> dict[str, Any]:
    """The run context of a message: its key, its place (`url`) and its main headers from `data`."""
    fields: dict[str, Any] = {name: getattr(key, name) for name in _KEY_FIELDS}
    fields["url"] = key.url
    fields.update(headers_of(data))
    return {CONTEXT_KEY: fields}


def headers_of(data: bytes) -> dict[str, str | None]:
    """Subject, From, To and Date as text (encoded words decoded); None when missing or unreadable."""
    found: dict[str, str | None] = dict.fromkeys(_HEADERS)
    if not data:
        return found
    strict = BytesHeaderParser(policy=policy.default).parsebytes(data)
    raw = BytesHeaderParser(policy=policy.compat32).parsebytes(data)
    for name, header in _HEADERS.items():
        try:
            value = strict[header]
            if getattr(value, "defects", None):  # parsed only in part ("<<<x" becomes "<>"): the raw text says more
                value = raw[header]
        except Exception:  # a malformed header the modern parser rejects: keep its raw text
            value = raw[header]
        if value is not None:
            text = " ".join(str(value).split())
            found[name] = text[:TEXT_MAX] or None
    return found


def message_key(context: Mapping[str, Any]) -> MessageKey | None:
    """The key of the run's message, or None when the run has none (a manual run on a file)."""
    fields = context.get(CONTEXT_KEY)
    if not isinstance(fields, Mapping) or any(name not in fields for name in _KEY_FIELDS):
        return None
    return MessageKey(**{name: fields[name] for name in _KEY_FIELDS})


def mail_scope(context: Mapping[str, Any]) -> dict[str, Any]:
    """What templates see as `mail`: the headers and the key; every name present (None in a manual run)."""
    fields = context.get(CONTEXT_KEY)
    known = dict(fields) if isinstance(fields, Mapping) else {}
    return {name: known.get(name) for name in (*_HEADERS, *_KEY_FIELDS, "url")}
