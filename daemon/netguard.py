"""The privacy guard: model and webhook traffic stays on this machine or the local network."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from daemon.errors import UsageError


class RemoteRefused(UsageError):
    """A URL points beyond loopback and private networks and that was not allowed."""

    def __init__(self, url: str, what: str, how_to_allow: str) -> None:
        super().__init__(
            f"{what} {url} is not on this machine or a private network, so documents would leave "
            f"home; use a local server or set {how_to_allow}"
        )
        self.url = url


def is_local(url: str) -> bool:
    """True when every address the URL's host names is loopback, private or link-local.

    Decided before any connection is made; a name is resolved, never contacted.
    """
    host = urlsplit(url if "//" in url else f"http://{url}").hostname
    if not host:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        try:
            infos = socket.getaddrinfo(host, None)
        except OSError:
            return False
        addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    return bool(addresses) and all(a.is_loopback or a.is_private or a.is_link_local for a in addresses)


def check_url(url: str, *, allowed: bool, what: str, how_to_allow: str) -> None:
    """Raise `RemoteRefused` unless `url` is local or remote traffic was allowed."""
    if not allowed and not is_local(url):
        raise RemoteRefused(url, what, how_to_allow)
