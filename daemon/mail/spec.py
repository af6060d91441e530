"""The typed shape of a mailbox trigger (`trigger: {mailbox: {...}}`) and of the mail route actions' names."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Annotated, Literal
from urllib.parse import quote

from pydantic import AfterValidator, Field, ValidationError, model_validator

from daemon.errors import MailboxRefused
from daemon.workflow.fields import EnvName, ExpandedPath, StrictModel, Text, problem

# Re-IDLE well before RFC 2177's 29 minutes: NAT boxes and some servers drop a quiet connection sooner.
IDLE_RENEW_SECONDS = 10 * 60.0
SYSTEM_FLAGS = {"seen": "\\Seen", "answered": "\\Answered", "flagged": "\\Flagged", "draft": "\\Draft"}
# An IMAP keyword is an atom: no space, brackets, braces, quotes, backslash, % or *.
_KEYWORD = re.compile(r"^[A-Za-z0-9$_.+\-:#!&'^`|~<>=?@,;/]{1,64}$")


def _flag(value: str) -> str:
    imap_flag(value)
    return value


def _folder(value: str) -> str:
    return check_folder_name(value)


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
    """An IMAP folder whose new messages each start a run; the password is read from `password_env`.

    The server and the user may be named by environment variables too (`host_env`, `user_env`), so a
    shipped workflow file needs no editing; `resolved(getenv)` gives the spec with their values.
    """

    host: Text | None = None
    host_env: EnvName | None = None
    port: int | None = Field(None, ge=1, le=65535)
    tls: bool = True
    starttls: bool = False
    # A self-hosted server's own CA (PEM): trusted for this mailbox instead of the system's CAs.
    tls_ca_file: ExpandedPath | None = None
    user: Text | None = None
    user_env: EnvName | None = None
    password_env: EnvName
    folder: FolderName = "INBOX"
    poll_interval: float = Field(60.0, ge=1, description="seconds between looks when the server has no IDLE")
    idle: bool = True
    # The first start on a folder that already holds mail: run them all, only the unread ones, or none.
    existing: Literal["all", "unseen", "none"] = "all"

    @model_validator(mode="after")
    def _transport(self) -> MailboxSpec:
        for name in ("host", "user"):
            if (getattr(self, name) is None) == (getattr(self, f"{name}_env") is None):
                raise problem(name, "give exactly one of {name} and {name}_env (the name of an environment "
                              "variable that holds it)", (name,), name=name)  # fmt: skip
        if self.tls and self.starttls:
            raise problem("starttls", "starttls upgrades a plain connection, so it needs tls: false; with "
                          "tls: true the connection is encrypted from the start", ("starttls",))  # fmt: skip
        if self.tls_ca_file is not None and not self.encrypted:
            raise problem("tls_ca_file", "tls_ca_file needs tls: true or starttls: true", ("tls_ca_file",))
        if self.host is not None and not self.encrypted and not _is_loopback(self.host):
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
        user = self.user if self.user is not None else f"${self.user_env}"
        host = self.host if self.host is not None else f"${self.host_env}"
        return f"{user}@{host}:{self.effective_port}/{self.folder}"

    @property
    def url(self) -> str:
        """The folder as an RFC 5092 IMAP URL: one identity for cursors and run keys (of a resolved spec)."""
        user = quote(self.user or "", safe="")
        return f"imap://{user}@{self.host}:{self.effective_port}/{quote(self.folder, safe='')}"

    @property
    def variables(self) -> list[str]:
        """The environment variables the mailbox reads: host_env and user_env when given, password_env."""
        return [name for name in (self.host_env, self.user_env, self.password_env) if name is not None]

    def missing(self, getenv: Callable[[str], str | None]) -> list[str]:
        """The variables among `variables` that are not set (the mailbox cannot be watched without them)."""
        return [name for name in self.variables if not getenv(name)]

    def resolved(self, getenv: Callable[[str], str | None]) -> MailboxSpec:
        """This spec with host and user read from their variables; MailboxRefused when unset or unusable."""
        if self.host_env is None and self.user_env is None:
            return self
        values = self.model_dump(exclude_none=True)
        for name in ("host", "user"):
            variable = values.pop(f"{name}_env", None)
            if variable is not None:
                value = getenv(variable)
                if not value:
                    raise MailboxRefused(f"mailbox {self.label}: the environment variable {variable} (its "
                                         f"{name}_env) is not set; set it to the mail {name}", self.label)  # fmt: skip
                values[name] = value.strip()
        try:
            return MailboxSpec.model_validate(values)
        except ValidationError as exc:
            reason = exc.errors()[0]["msg"].removeprefix("Value error, ")
            raise MailboxRefused(f"mailbox {self.label}: {reason}", self.label) from None
