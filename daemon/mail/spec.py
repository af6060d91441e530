"""The typed shape of a mailbox trigger (`trigger: {mailbox: {...}}`) and of the mail route actions' names."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated
from urllib.parse import quote

from pydantic import AfterValidator, Field, model_validator

from daemon.workflow.fields import ExpandedPath, StrictModel, Text, problem

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Re-IDLE well before RFC 2177's 29 minutes: NAT boxes and some servers drop a quiet connection sooner.
IDLE_RENEW_SECONDS = 10 * 60.0
SYSTEM_FLAGS = {"seen": "\\Seen", "answered": "\\Answered", "flagged": "\\Flagged", "draft": "\\Draft"}
# An IMAP keyword is an atom: no space, brackets, braces, quotes, backslash, % or *.
_KEYWORD = re.compile(r"^[A-Za-z0-9$_.+\-:#!&'^`|~<>=?@,;/]{1,64}$")


def _env_name(value: str) -> str:
    if not ENV_NAME.match(value):
        raise problem("env_name", "'{name}' is not an environment variable name; use letters, digits and "
                      "underscores, such as MAIL_PASSWORD", name=value)  # fmt: skip
    return value


def _flag(value: str) -> str:
    imap_flag(value)
    return value


def _folder(value: str) -> str:
    return check_folder_name(value)


EnvName = Annotated[str, AfterValidator(_env_name)]
FolderName = Annotated[str, AfterValidator(_folder)]


def check_folder_name(name: str) -> str:
    """`name` when it can be an IMAP folder name; a plain-sentence validation error otherwise."""
    if not name.strip():
        raise problem("folder", "the folder name is empty; give one such as INBOX or Invoices")
    if len(name) > 200 or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise problem("folder", "'{name}' is not a usable folder name (control characters or over 200 "
                      "characters)", name=name[:60])  # fmt: skip
    return name


def imap_flag(name: str) -> str:
    """The IMAP flag a route's `flag: NAME` sets: a system flag or a keyword; never `\\Deleted`.

    `seen`, `answered`, `flagged` and `draft` (any case, with or without the backslash) are the system
    flags; any other atom is a keyword, such as `$Junk` or `Invoices`.
    """
    bare = name.strip().removeprefix("\\")
    if bare.lower() == "deleted":
        raise problem("flag", "gristmill never deletes mail, so it does not set \\Deleted; use "
                      "move_to_folder: Trash to put a message away")  # fmt: skip
    if bare.lower() in SYSTEM_FLAGS:
        return SYSTEM_FLAGS[bare.lower()]
    if name.strip().startswith("\\"):
        raise problem("flag", "'{name}' is not a system flag; they are {known}, or use a keyword without "
                      "the backslash", name=name, known=", ".join(SYSTEM_FLAGS.values()))  # fmt: skip
    if not _KEYWORD.match(bare):
        raise problem("flag", "'{name}' is not a flag IMAP can set: a keyword is one word of up to 64 letters, "
                      "digits or $_.-, without spaces, brackets, quotes, % or *", name=name)  # fmt: skip
    return bare


# For the route actions' schema: `move_to_folder: FolderName`, `flag: MailFlag` (stored as written).
MailFlag = Annotated[str, AfterValidator(_flag)]


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class MailboxSpec(StrictModel):
    """An IMAP folder whose new messages each start a run; the password is read from `password_env`."""

    host: Text
    port: int | None = Field(None, ge=1, le=65535)
    tls: bool = True
    starttls: bool = False
    # A self-hosted server's own CA (PEM): trusted for this mailbox instead of the system's CAs.
    tls_ca_file: ExpandedPath | None = None
    user: Text
    password_env: EnvName
    folder: FolderName = "INBOX"
    poll_interval: float = Field(60.0, ge=1, description="seconds between looks when the server has no IDLE")
    idle: bool = True

    @model_validator(mode="after")
    def _transport(self) -> MailboxSpec:
        if self.tls and self.starttls:
            raise problem("starttls", "starttls upgrades a plain connection, so it needs tls: false; with "
                          "tls: true the connection is encrypted from the start", ("starttls",))  # fmt: skip
        if self.tls_ca_file is not None and not self.encrypted:
            raise problem("tls_ca_file", "tls_ca_file needs tls: true or starttls: true", ("tls_ca_file",))
        if not self.encrypted and not _is_loopback(self.host):
            raise problem("tls", "without tls or starttls the password would cross the network in clear; "
                          "use tls: true (port 993) or starttls: true (port 143); plain text is allowed on "
                          "this machine (127.0.0.1) only", ("tls",))  # fmt: skip
        return self

    @property
    def encrypted(self) -> bool:
        """True when the password and the mail travel over TLS."""
        return self.tls or self.starttls

    @property
    def effective_port(self) -> int:
        """The port given, else 993 for TLS and 143 otherwise."""
        return self.port or (993 if self.tls else 143)

    @property
    def label(self) -> str:
        """The mailbox in words for logs and errors: user, server and folder; never the password."""
        return f"{self.user}@{self.host}:{self.effective_port}/{self.folder}"

    @property
    def url(self) -> str:
        """The folder as an RFC 5092 IMAP URL: one identity for cursors and run keys."""
        user = quote(self.user, safe="")
        return f"imap://{user}@{self.host}:{self.effective_port}/{quote(self.folder, safe='')}"
