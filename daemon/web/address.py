"""`GRISTMILL_HTTP`: where the dashboard listens, parsed once; no web library is imported here."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass

DEFAULT_HTTP = "127.0.0.1:8377"
OFF = "off"


@dataclass(frozen=True)
class HttpAddress:
    """A host (IP literal or name) and a TCP port."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """The base URL a browser on this machine would use."""
        host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(self.host, self.host)  # a wildcard: this machine
        return f"http://{HttpAddress(host, self.port)}"

    def is_loopback(self) -> bool:
        """Whether every address the host names is a loopback one (a name is resolved, not contacted)."""
        if self.host == "localhost" or self.host.endswith(".localhost"):
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            pass
        try:
            infos = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)
        except OSError:
            return False
        return bool(infos) and all(ipaddress.ip_address(info[4][0]).is_loopback for info in infos)


def parse_http(value: str) -> HttpAddress | None:
    """`off` → None; `HOST:PORT` or `[IPv6]:PORT` → the address; anything else raises ValueError."""
    text = value.strip()
    if text.lower() == OFF:
        return None
    host, sep, port_text = text.rpartition(":")
    if not sep or not host:
        raise ValueError(f"'{value}' is not HOST:PORT (for example {DEFAULT_HTTP}) or 'off'")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        _ip(host, value, version=6)
    elif ":" in host:
        raise ValueError(f"'{value}' has an IPv6 address without brackets; write it as [{host}]:{port_text}")
    elif not _hostname_ok(host):
        raise ValueError(f"'{value}' does not start with a host name or IP address")
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"the port in '{value}' must be a number from 1 to 65535")
    return HttpAddress(host, int(port_text))


def _ip(host: str, value: str, *, version: int) -> None:
    try:
        if ipaddress.ip_address(host).version == version:
            return
    except ValueError:
        pass
    raise ValueError(f"'{value}' has '{host}' in brackets, which is not an IPv6 address")


def _hostname_ok(host: str) -> bool:
    labels = host.split(".")
    return len(host) <= 253 and all(label and len(label) <= 63 and label.replace("-", "").isalnum() for label in labels)
