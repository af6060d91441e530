"""The mailbox trigger's service: one thread per mailbox that connects, reads, waits (IDLE or polling), repeats.

A lost connection, a server restart, a refused login: all are an outage. One log line when the
mailbox is lost, one when it is back, reconnection with capped exponential backoff in between, and
the cursor (moved only past messages `submit` took) makes sure nothing is lost on the way.
"""

from __future__ import annotations

import logging
import random
import select
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from imapclient import IMAPClient

from daemon.errors import MailboxError
from daemon.mail.connection import CONNECTION_ERRORS, GetEnv, close, describe, open_mailbox
from daemon.mail.cursor import CursorStore
from daemon.mail.reader import FolderReader, Refuse, Submit, log_refusal
from daemon.mail.spec import IDLE_RENEW_SECONDS, MailboxSpec
from daemon.words import count

log = logging.getLogger("gristmill")

# Waits up to the given seconds; True when the watcher is stopping (then it returns at once).
Sleep = Callable[[float], bool]
Opener = Callable[..., IMAPClient]
_HANGUP = select.POLLHUP | select.POLLERR | select.POLLNVAL | getattr(select, "POLLRDHUP", 0)


class WatchState(StrEnum):
    STARTING = "starting"
    WATCHING = "watching"
    DOWN = "down"
    STOPPED = "stopped"


@dataclass(frozen=True)
class WatcherStatus:
    """What `workflows`, `/healthz` and the dashboard can show of a mailbox trigger."""

    state: WatchState
    mode: str | None  # "idle" or "poll" while watching
    failures: int  # connection attempts failed in a row
    reason: str | None  # why the last one failed, in words


def backoff_delay(failures: int, base: float, cap: float, jitter: float) -> float:
    """Seconds before try `failures + 1`: doubling from `base`, at most `cap`, spread by jitter in [0, 1)."""
    return min(cap, base * 2 ** max(failures - 1, 0)) * (0.5 + jitter / 2)


class _Closed(ConnectionError):
    """The server hung up or said BYE while we were idling."""


class MailboxWatcher:
    """Watches one mailbox folder and hands each new message to `submit` once, through outages."""

    def __init__(
        self,
        spec: MailboxSpec,
        submit: Submit,
        *,
        cursor: CursorStore,
        getenv: GetEnv,
        name: str = "",
        refuse: Refuse = log_refusal,
        max_bytes: int = 50 * 1024 * 1024,
        timeout: float = 30.0,
        backoff_base: float = 1.0,
        backoff_cap: float = 300.0,
        idle_renew: float = IDLE_RENEW_SECONDS,
        wake_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep | None = None,
        jitter: Callable[[], float] = random.random,
        opener: Opener = open_mailbox,
    ) -> None:
        self.spec, self.getenv, self.timeout, self.opener = spec, getenv, timeout, opener
        self.what = f"mailbox {spec.label}" + (f" (workflow {name})" if name else "")
        self.reader = FolderReader(spec.url, spec.folder, submit, cursor, max_bytes=max_bytes, refuse=refuse,
                                   label=spec.label, existing=spec.existing)  # fmt: skip
        self.backoff_base, self.backoff_cap, self.jitter = backoff_base, backoff_cap, jitter
        self.idle_renew, self.wake_seconds, self.clock = idle_renew, wake_seconds, clock
        self._stopping = threading.Event()
        self.sleep: Sleep = sleep or self._stopping.wait
        self._thread: threading.Thread | None = None
        self._status = WatcherStatus(WatchState.STOPPED, None, 0, None)
        self._failures = 0  # connection attempts failed in a row; the backoff grows with it

    # ---------------------------------------------------------------- the service

    def start(self) -> MailboxWatcher:
        """Start watching in a thread of its own; returns at once."""
        self._stopping.clear()
        self._failures = 0
        self._status = WatcherStatus(WatchState.STARTING, None, 0, None)
        self._thread = threading.Thread(target=self._run, name=f"mailbox {self.spec.label}", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Stop after the message in hand (if any); logs out."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        """True while the watcher's thread runs (connected or waiting to reconnect)."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def status(self) -> WatcherStatus:
        return self._status

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def _run(self) -> None:
        while not self.stopping:
            client = None
            try:
                client = self.opener(self.spec, self.getenv, timeout=self.timeout)
                self._session(client)
            except (MailboxError, *CONNECTION_ERRORS) as exc:
                if not self.stopping:
                    self._lost(describe(exc))
            except Exception as exc:  # a defect must not end the trigger silently: log it, then go on
                log.exception("%s: unexpected error; reconnecting", self.what)
                self._lost(describe(exc))
            finally:
                if client is not None:
                    close(client)
            if not self.stopping and self._failures:
                self.sleep(backoff_delay(self._failures, self.backoff_base, self.backoff_cap, self.jitter()))
        self._status = WatcherStatus(WatchState.STOPPED, None, 0, None)

    def _lost(self, reason: str) -> None:
        self._failures += 1
        if self._status.state is not WatchState.DOWN:
            log.warning("%s is unreachable: %s; reconnecting with backoff, no mail is lost", self.what, reason)
        else:
            log.debug("%s: try %d failed: %s", self.what, self._failures, reason)
        self._status = WatcherStatus(WatchState.DOWN, None, self._failures, reason)

    def _reached(self, mode: str) -> None:
        if self._status.state is WatchState.DOWN:
            log.warning("%s is reachable again after %d failed tries; reading what arrived meanwhile",
                        self.what, self._failures)  # fmt: skip
        elif self._status.state is WatchState.STARTING:
            how = "IDLE" if mode == "idle" else f"polling every {self.spec.poll_interval:g} s"
            log.info("%s: watching (%s)", self.what, how)
        self._status = WatcherStatus(WatchState.WATCHING, mode, 0, None)

    # ---------------------------------------------------------------- one connection

    def _session(self, client: IMAPClient) -> None:
        self.reader.select(client)
        idle = self.spec.idle and client.has_capability("IDLE")
        self._reached("idle" if idle else "poll")
        self._drain(client)
        # Only a connection that got this far resets the backoff: one that breaks at once every time
        # (a server fault) keeps backing off instead of logging lost/back every second.
        self._failures = 0
        while not self.stopping:
            if idle and _told_of_new_mail(client):
                self._drain(client)  # mail that came while we were reading: IDLE would not tell of it again
                continue
            if idle:
                self._idle(client)
            elif self.sleep(self.spec.poll_interval):
                return
            if not self.stopping:
                self.reader.refresh(client)
                self._drain(client)

    def _drain(self, client: IMAPClient) -> None:
        """Hand over everything new; while `submit` cannot queue, wait with backoff and try again."""
        tries = 0
        while not self.reader.drain(client):
            tries += 1
            if tries == 1:
                log.warning("%s: a message could not be queued; it is tried again with backoff", self.what)
            if self.sleep(backoff_delay(tries, self.backoff_base, self.backoff_cap, self.jitter())):
                return
            client.noop()  # keeps the connection in use between tries
        if tries:
            log.warning("%s: queueing works again after %s", self.what, count(tries, "try", "tries"))

    def _idle(self, client: IMAPClient) -> None:
        """IDLE until a message arrives, the renewal time comes (RFC 2177: under 29 minutes) or stop."""
        client.idle()
        started = self.clock()
        while not self.stopping:
            left = self.idle_renew - (self.clock() - started)
            if left <= 0 or self._new_mail(client, min(left, self.wake_seconds)):
                break
        client.idle_done()  # not after an error: the connection is gone and is only closed then

    def _new_mail(self, client: IMAPClient, timeout: float) -> bool:
        if _unread_lines(client):
            return True  # read along with "+ idling" into imaplib's buffer, where no poll of the socket sees it
        # Our own poll, because imapclient's idle_check reads end-of-stream as "nothing yet": a server
        # that went away would go unnoticed until the next renewal.
        poller = select.poll()
        poller.register(client.socket(), select.POLLIN | _HANGUP)
        events = poller.poll(timeout * 1000)
        if not events:
            return False
        if events[0][1] & _HANGUP:
            raise _Closed("the server closed the connection")
        responses = client.idle_check(timeout=0)
        if any(r and r[0] == b"BYE" for r in responses):
            raise _Closed(f"the server said goodbye ({responses[-1][-1]!r})")
        # Wake for anything but a keep-alive: new mail (EXISTS), and also a NO or a [UIDVALIDITY] notice,
        # which is how a server tells that the folder was rebuilt under us.
        return any(not _keep_alive(r) for r in responses)


def _unread_lines(client: IMAPClient) -> bool:
    """Whether the server's lines wait in imaplib's buffer (or TLS's), where polling the socket cannot see them."""
    sock = client.socket()
    timeout = sock.gettimeout()
    sock.settimeout(0)  # peek may read the socket once when the buffer is empty: never wait for it
    try:
        return bool(client._imap.file.peek(1))
    except (BlockingIOError, ssl.SSLWantReadError):
        return False
    finally:
        sock.settimeout(timeout)


def _told_of_new_mail(client: IMAPClient) -> bool:
    """Whether the server reported EXISTS since the last look (clearing the report).

    A server tells of new mail once, in the reply to whatever command is running when it comes (a
    FETCH of the drain, say); imaplib keeps such reports aside, and IDLE would not repeat them.
    """
    return bool(client._imap.untagged_responses.pop("EXISTS", None))


def _keep_alive(response: tuple) -> bool:
    return len(response) > 1 and response[0] == b"OK" and b"[" not in bytes(response[1])
