"""Network access control: which classes of address the client may connect to.

Windows apps declare capabilities (``internetClient``, ``privateNetworkClientServer``) and a
socket cannot reach a network class its app did not declare. ``control.network_access`` does
the same for a Python service that opens WebSockets to URLs its users supply: with
``NetworkAccess.INTERNET`` alone, a URL that resolves to 127.0.0.1, 10.0.0.5 or the cloud
metadata address 169.254.169.254 is refused before a packet is sent (SSRF protection).

The classes, checked on the address the client is about to connect to (every DNS answer it
tries, every redirect hop, the proxy itself):

- ``LOOPBACK``: 127.0.0.0/8 and ::1.
- ``PRIVATE``: 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, 100.64.0.0/10 (carrier-grade NAT),
  169.254.0.0/16 (link-local, cloud metadata included), fc00::/7 (unique local), fe80::/10
  (link-local).
- ``INTERNET``: every other global unicast address.
- Never allowed, whatever the setting: unspecified (0.0.0.0/8, ::), multicast (224.0.0.0/4,
  ff00::/8), reserved and special-purpose ranges (240.0.0.0/4 with the broadcast address,
  192.0.0.0/24, documentation and benchmarking ranges, the deprecated site-local and
  IPv4-compatible IPv6 ranges, and IPv6 outside 2000::/3).
- An IPv4-mapped IPv6 address (::ffff:a.b.c.d), a NAT64 address (64:ff9b::/96) and a 6to4
  address (2002::/16) are judged by the IPv4 address they carry.
"""

from __future__ import annotations

import enum
import ipaddress

from .enums import WebErrorStatus
from .errors import NetworkAccessDenied

__all__ = ["ALL_NETWORKS", "NetworkAccess", "address_class", "check_address", "refusal"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class NetworkAccess(enum.Flag):
    """The classes of address a connection may reach (``control.network_access``).

    Combine with ``|``; the default is ``LOOPBACK | PRIVATE | INTERNET`` (everything that is
    not forbidden outright). See :mod:`trio_mws.network_access` for the exact ranges.
    """

    #: 127.0.0.0/8 and ::1: this machine.
    LOOPBACK = enum.auto()
    #: RFC 1918, carrier-grade NAT, link-local (cloud metadata), IPv6 unique-local and
    #: link-local: the local network.
    PRIVATE = enum.auto()
    #: Every other global unicast address: the internet.
    INTERNET = enum.auto()


#: Every class: the default of ``control.network_access``.
ALL_NETWORKS = NetworkAccess.LOOPBACK | NetworkAccess.PRIVATE | NetworkAccess.INTERNET

_V4 = ipaddress.IPv4Network
_V6 = ipaddress.IPv6Network

_LOOPBACK = (_V4("127.0.0.0/8"), _V6("::1/128"))
_PRIVATE = (
    _V4("10.0.0.0/8"),
    _V4("172.16.0.0/12"),
    _V4("192.168.0.0/16"),
    _V4("100.64.0.0/10"),
    _V4("169.254.0.0/16"),
    _V6("fc00::/7"),
    _V6("fe80::/10"),
)
_FORBIDDEN = (
    _V4("0.0.0.0/8"),  # "this network", the unspecified address
    _V4("192.0.0.0/24"),  # IETF protocol assignments
    _V4("192.0.2.0/24"),  # documentation
    _V4("198.51.100.0/24"),  # documentation
    _V4("203.0.113.0/24"),  # documentation
    _V4("198.18.0.0/15"),  # benchmarking
    _V4("192.88.99.0/24"),  # deprecated 6to4 relay anycast
    _V4("224.0.0.0/4"),  # multicast
    _V4("240.0.0.0/4"),  # reserved, the broadcast address included
    _V6("::/96"),  # unspecified and the deprecated IPv4-compatible addresses
    _V6("100::/64"),  # discard-only
    _V6("2001::/23"),  # IETF protocol assignments (Teredo included)
    _V6("2001:db8::/32"),  # documentation
    _V6("3fff::/20"),  # documentation
    _V6("fec0::/10"),  # deprecated site-local
    _V6("ff00::/8"),  # multicast
)
_GLOBAL_UNICAST_V6 = _V6("2000::/3")
_NAT64 = _V6("64:ff9b::/96")


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, NAT64, 6to4), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.sixtofour


def address_class(address: str | IPAddress) -> NetworkAccess | None:
    """The class of an IP address, or ``None`` for one that is never allowed.

    ``ValueError`` for a string that is not an IP address.
    """
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id is not None:  # fe80::1%eth0: judge the address, not the zone
            ip = ipaddress.IPv6Address(str(ip).split("%", 1)[0])
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            return address_class(embedded)
    if any(ip in network for network in _LOOPBACK):
        return NetworkAccess.LOOPBACK
    if any(ip in network for network in _PRIVATE):
        return NetworkAccess.PRIVATE
    if any(ip in network for network in _FORBIDDEN):
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip not in _GLOBAL_UNICAST_V6:
        return None  # unallocated or reserved IPv6 space
    return NetworkAccess.INTERNET


def refusal(address: str | IPAddress, allowed: NetworkAccess) -> str | None:
    """Why connecting to ``address`` is not allowed under ``allowed``, or ``None`` if it is."""
    found = address_class(address)
    if found is None:
        return f"{address} is an unspecified, multicast or reserved address: never allowed"
    if found & allowed:
        return None
    name = _describe(found)
    return (
        f"{address} is a {name.lower()} address, and control.network_access "
        f"({_describe(allowed)}) does not allow {name}"
    )


def check_address(address: str | IPAddress, allowed: NetworkAccess) -> None:
    """Raise :class:`~trio_mws.NetworkAccessDenied` (a ``ConnectError`` with status
    ``CANNOT_CONNECT``) naming the address and the missing access when ``allowed`` does not
    cover ``address``."""
    reason = refusal(address, allowed)
    if reason is not None:
        raise NetworkAccessDenied(
            f"connection refused by network access control: {reason}",
            WebErrorStatus.CANNOT_CONNECT,
        )


def _describe(allowed: NetworkAccess) -> str:
    names = [member.name for member in NetworkAccess if member & allowed and member.name]
    return " | ".join(names) if names else "nothing"
