"""E-mail (.eml) with the stdlib: headers, the text body, the names of attachments. In the sandbox."""

from __future__ import annotations

from email import policy
from email.parser import BytesParser
from typing import Any

from daemon.documents import html

_HEADERS = ("From", "To", "Cc", "Date", "Subject")


def read(data: bytes) -> tuple[str, dict[str, Any]]:
    """The message as text: its main headers, its body, then a line naming each attachment."""
    message = BytesParser(policy=policy.default).parsebytes(data)
    headers = {name.lower(): str(message[name]) for name in _HEADERS if message[name]}
    body = message.get_body(preferencelist=("plain", "html"))
    text = ""
    if body is not None:
        content = body.get_content()
        if body.get_content_type() == "text/html":
            content = html.main_text(content)[0]
        text = content.strip()
    attachments = [part.get_filename() or part.get_content_type() for part in message.iter_attachments()]
    lines = [f"{name.title()}: {headers[name.lower()]}" for name in _HEADERS if name.lower() in headers]
    if attachments:
        lines.append("Attachments: " + ", ".join(attachments))
    meta = {
        "sender": headers.get("from"),
        "to": headers.get("to"),
        "subject": headers.get("subject"),
        "date": headers.get("date"),
        "attachments": attachments,
        "title": headers.get("subject"),
    }
    return "\n".join(lines) + "\n\n" + text, meta
