"""systemd's notify protocol: one datagram per message to $NOTIFY_SOCKET, nothing else."""

from __future__ import annotations

import logging
import socket

log = logging.getLogger("gristmill")


class Notifier:
    """Sends READY=1, STATUS=…, WATCHDOG=1 and STOPPING=1 to systemd; does nothing without a socket."""

    def __init__(self, address: str | None) -> None:
        # A leading "@" names Linux's abstract namespace, spelled with a NUL byte in the address.
        self.address = None if not address else ("\0" + address[1:] if address.startswith("@") else address)
        self._warned = False

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def ready(self, status: str) -> None:
        self.send(f"READY=1\nSTATUS={status}")

    def status(self, status: str) -> None:
        self.send(f"STATUS={status}")

    def watchdog(self) -> None:
        self.send("WATCHDOG=1")

    def stopping(self, status: str) -> None:
        self.send(f"STOPPING=1\nSTATUS={status}")

    def send(self, message: str) -> bool:
        """Send one datagram; a failure is logged once and otherwise ignored (systemd may be gone)."""
        if self.address is None:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.sendto(message.encode("utf-8"), self.address)
        except OSError as exc:
            if not self._warned:
                log.warning("cannot notify systemd at %s (%s)", self.address.lstrip("\0"), exc)
                self._warned = True
            return False
        return True
