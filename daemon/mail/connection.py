"""Opening a logged-in IMAP connection for a `MailboxSpec`, and saying in words why one failed.

imapclient (maintained, on top of the standard library's imaplib) parses IMAP's responses into Python
values, encodes folder names (modified UTF-7) and speaks IDLE, MOVE and UIDPLUS; its imaplib logger
redacts LOGIN. The password is asked of `getenv` at each connection and handed straight to LOGIN.
"""

from __future__ import annotations

import contextlib
import imaplib
import socket
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from imapclient import IMAPClient
from imapclient.exceptions import LoginError

from daemon.errors import MailboxError, MailboxRefused, MailboxUnavailable
from daemon.mail.spec import MailboxSpec

GetEnv = Callable[[str], "str | None"]
# What a broken connection raises anywhere in a session: sockets, TLS, and imaplib's own errors.
CONNECTION_ERRORS = (OSError, imaplib.IMAP4.error, imaplib.IMAP4.abort, EOFError)


def tls_context(spec: MailboxSpec) -> ssl.SSLContext | None:
    """The verifying TLS context of an encrypted mailbox (its own CA when `tls_ca_file` is set)."""
    if not spec.encrypted:
        return None
    if spec.tls_ca_file is None:
        return ssl.create_default_context()
    try:
        return ssl.create_default_context(cafile=str(spec.tls_ca_file))
    except (OSError, ssl.SSLError) as exc:
        raise MailboxRefused(
            f"mailbox {spec.label}: tls_ca_file {spec.tls_ca_file} is not a readable PEM "
            f"certificate ({exc}); point it at the CA of your mail server",
            spec.label,
        ) from exc


def password_of(spec: MailboxSpec, getenv: GetEnv) -> str:
    """The password from the variable `password_env` names; MailboxRefused when it is unset."""
    password = getenv(spec.password_env)
    if not password:
        raise MailboxRefused(f"mailbox {spec.label}: the environment variable {spec.password_env} (its "
                             "password_env) is not set; set it to the mailbox password", spec.label)  # fmt: skip
    return password


def describe(exc: BaseException) -> str:
    """Why a connection failed, in words, without a traceback (and never with the password)."""
    if isinstance(exc, MailboxError):
        return exc.message
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (f"its TLS certificate is not trusted ({exc.verify_message}); for a self-hosted server set "
                "tls_ca_file to its CA")  # fmt: skip
    if isinstance(exc, ssl.SSLError):
        return f"the TLS handshake failed ({exc.reason or exc}); check tls, starttls and the port"
    if isinstance(exc, ConnectionRefusedError):
        return "the connection was refused (is the server running, and is the port right?)"
    if isinstance(exc, ConnectionError):
        return f"the connection was lost ({exc})"
    if isinstance(exc, socket.timeout | TimeoutError):
        return "the server did not answer in time"
    if isinstance(exc, socket.gaierror):
        return f"the host name does not resolve ({exc.strerror})"
    if isinstance(exc, imaplib.IMAP4.abort | EOFError):
        return f"the server dropped the connection ({exc or 'end of stream'})"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def connect(spec: MailboxSpec, password: str, *, timeout: float = 30.0) -> IMAPClient:
    """A logged-in client (no folder selected); raises what imapclient and the socket raise."""
    context = tls_context(spec)
    client = IMAPClient(spec.host, spec.effective_port, ssl=spec.tls, ssl_context=context, timeout=timeout)
    try:
        if spec.starttls:
            client.starttls(context)
        client.login(spec.user, password)
    except BaseException:
        close(client)
        raise
    return client


def open_mailbox(spec: MailboxSpec, getenv: GetEnv, *, timeout: float = 30.0) -> IMAPClient:
    """`connect` with the password from the environment; every failure a `MailboxError` in one sentence."""
    spec = spec.resolved(getenv)
    password = password_of(spec, getenv)
    try:
        return connect(spec, password, timeout=timeout)
    except LoginError as exc:
        raise MailboxRefused(
            f"mailbox {spec.label}: the server refused the login of {spec.user} ({exc}); "
            f"check the user and the password in {spec.password_env}",
            spec.label,
        ) from exc
    except ssl.SSLCertVerificationError as exc:
        raise MailboxRefused(f"mailbox {spec.label}: {describe(exc)}", spec.label) from exc
    except CONNECTION_ERRORS as exc:
        raise MailboxUnavailable(f"mailbox {spec.label}: {describe(exc)}", spec.label) from exc


@contextlib.contextmanager
def mailbox(spec: MailboxSpec, getenv: GetEnv, *, timeout: float = 30.0) -> Iterator[IMAPClient]:
    """A logged-in client for the `with` block, logged out after it (for route actions)."""
    client = open_mailbox(spec, getenv, timeout=timeout)
    try:
        yield client
    finally:
        close(client)


def close(client: IMAPClient) -> None:
    """Log out, or just drop the connection when the server is gone."""
    try:
        client.logout()
    except CONNECTION_ERRORS:  # the connection is already broken; closing the socket is all that is left
        with contextlib.suppress(*CONNECTION_ERRORS):
            client.shutdown()


@dataclass(frozen=True)
class MailboxInfo:
    """What `check` reports of a reachable mailbox."""

    label: str
    messages: int
    uidvalidity: int
    idle: bool
    move: bool
    uidplus: bool


def check_mailbox(spec: MailboxSpec, getenv: GetEnv, *, timeout: float = 10.0) -> MailboxInfo:
    """Log in and look at the folder without changing anything; `MailboxError` in one sentence otherwise."""
    spec = spec.resolved(getenv)
    with mailbox(spec, getenv, timeout=timeout) as client:
        try:
            if not client.folder_exists(spec.folder):
                raise MailboxRefused(f"mailbox {spec.label}: the folder {spec.folder} does not exist; check "
                                     "the folder name (INBOX is the inbox)", spec.label)  # fmt: skip
            status = client.folder_status(spec.folder, ["MESSAGES", "UIDVALIDITY"])
            has = client.has_capability
            return MailboxInfo(spec.label, int(status[b"MESSAGES"]), int(status[b"UIDVALIDITY"]),
                               has("IDLE"), has("MOVE"), has("UIDPLUS"))  # fmt: skip
        except CONNECTION_ERRORS as exc:
            raise MailboxUnavailable(f"mailbox {spec.label}: {describe(exc)}", spec.label) from exc
