"""What identifies one message: where it is (UIDVALIDITY + UID) and what it is (Message-ID, else its bytes)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from email import policy
from email.parser import BytesHeaderParser

_ANGLE = re.compile(r"<[^<>]+>")
MAX_MESSAGE_ID = 500  # longer ones are hashed: a key column need not hold a hostile header


@dataclass(frozen=True)
class MessageKey:
    """One fetched message: `url` says where it was, `identity` what it is; both key "never twice"."""

    mailbox: str  # the folder's IMAP URL (MailboxSpec.url)
    folder: str
    uidvalidity: int
    uid: int
    message_id: str | None  # from the header, normalised; None when missing or empty
    sha256: str  # of the message's bytes
    size: int

    @property
    def url(self) -> str:
        """RFC 5092: this message in this folder; a UIDVALIDITY change makes it a new URL."""
        return f"{self.mailbox};UIDVALIDITY={self.uidvalidity}/;UID={self.uid}"

    @property
    def identity(self) -> str:
        """The same message wherever it is: its Message-ID, else the hash of its bytes."""
        return f"message-id:{self.message_id}" if self.message_id else f"sha256:{self.sha256}"


def normalise_message_id(raw: str | None) -> str | None:
    """The `<...>` part of a Message-ID header (folding and comments dropped), or the trimmed text."""
    if raw is None:
        return None
    text = " ".join(str(raw).split())
    text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    found = _ANGLE.search(text)
    # Folding may leave spaces inside the brackets (obsolete syntax); the id itself has none.
    value = "".join(found.group(0).split()) if found else text
    if not value:
        return None
    if len(value) > MAX_MESSAGE_ID:
        return "<sha256:" + hashlib.sha256(value.encode()).hexdigest() + ">"
    return value


def message_id_of(data: bytes) -> str | None:
    """The normalised Message-ID of a message (headers only are parsed), or None."""
    # compat32 never raises on a malformed header; it hands back the raw text.
    headers = BytesHeaderParser(policy=policy.compat32).parsebytes(data)
    return normalise_message_id(headers.get("Message-ID"))


def key_of(mailbox: str, folder: str, uidvalidity: int, uid: int, data: bytes) -> MessageKey:
    """The key of message `uid` whose bytes are `data`."""
    return MessageKey(
        mailbox=mailbox, folder=folder, uidvalidity=uidvalidity, uid=uid,
        message_id=message_id_of(data), sha256=hashlib.sha256(data).hexdigest(), size=len(data),
    )  # fmt: skip
