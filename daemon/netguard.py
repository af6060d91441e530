"""The privacy guard: model and webhook traffic stays on this machine or the local network."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

from daemon.errors import UsageError


class RemoteRefused(UsageError):
    """A URL points beyond loopback and private networks and that was not allowed."""

    def __init__(self, url: str, what: str, how_to_allow: str) -> None:
        super().__init__(
            f"{what} {url} is not on this machine or a private network, so documents would leave "
            f"home; use a local server, declare its network local in GRISTMILL_LOCAL_NETWORKS, or set {how_to_allow}"
        )
        self.url = url


# Python's `is_private` also counts documentation, benchmark and reserved ranges (203.0.113.0/24,
# 198.18.0.0/15, 240.0.0.0/4, ...), which are not a home network; name the ones that are.
LOCAL_NETWORKS = tuple(
    ipaddress.ip_network(net)
    for net in (
        "127.0.0.0/8", "0.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16",
        "::1/128", "fc00::/7", "fe80::/10",
    )
)  # fmt: skip


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def is_local_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address, extra: Iterable[Network] = ()) -> bool:
    """True for loopback, RFC 1918 private, link-local, IPv6 unique-local addresses and those in `extra`."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in net for net in (*LOCAL_NETWORKS, *extra) if net.version == address.version)


def is_local(url: str, extra: Iterable[Network] = ()) -> bool:
    """True when every address the URL's host names is loopback, private, link-local or in `extra`.

    `extra` are the ranges the user declared local (GRISTMILL_LOCAL_NETWORKS, e.g. Tailscale's
    100.64.0.0/10). Decided before any connection is made; a name is resolved, never contacted.
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
    extra = tuple(extra)
    return bool(addresses) and all(is_local_address(a, extra) for a in addresses)


def check_url(url: str, *, allowed: bool, what: str, how_to_allow: str, local_networks: Iterable[Network] = ()) -> None:
    """Raise `RemoteRefused` unless `url` is local (built-in or declared ranges) or remote traffic was allowed."""
    if not allowed and not is_local(url, local_networks):
        raise RemoteRefused(url, what, how_to_allow)
