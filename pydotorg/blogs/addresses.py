"""Which addresses a feed may be fetched from: the public internet only.

A feed URL, and every redirect, is input from outside. Without this check a feed
could make the worker fetch ``http://127.0.0.1:.../admin``, a cloud metadata
service at ``169.254.169.254`` or anything else on the private network, and the
site would then publish what it got (SSRF).

- :func:`refusal` says why an IP address is not on the public internet, or None;
  :func:`allowed` adds the networks FEEDS_ALLOW_PRIVATE_NETWORKS lets through.
- :func:`literal_address` reads an IP address however the host spells it.
- :func:`check_literal_host` is the admin form's check (no DNS).
- :func:`resolve_checked` resolves a host name and checks every answer; the
  fetcher then connects to exactly the addresses it returns.

Name resolution goes through :data:`resolver`, which tests and benchmarks replace
with :func:`use_resolver` (there is no real DNS on loopback).
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# 100.64.0.0/10, carrier-grade NAT (RFC 6598): neither private nor global in Python's terms.
_SHARED = ipaddress.ip_network("100.64.0.0/10")
# NAT64: the well-known prefix embeds an IPv4 address in its last 32 bits (RFC 6052);
# the local-use prefix (RFC 8215) translates to addresses that only the local network knows.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
# What inet_aton(3) accepts, and so what getaddrinfo and browsers take for an IPv4 address:
# one to four parts, each decimal, octal (leading 0) or hex (0x): "2130706433", "0x7f.1", "0177.0.0.1".
_INET_ATON = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)(?:\.(?:0x[0-9a-f]*|[0-9]+)){0,3}", re.IGNORECASE)
# RFC 6761: "localhost" and every name under it are loopback, whatever a resolver says.
_LOCALHOST = re.compile(r"(?:.+\.)?localhost\.?", re.IGNORECASE)
_LOOPBACK = ipaddress.IPv4Address("127.0.0.1")


class BlockedAddress(Exception):
    """A feed URL or redirect leads to an address that is not on the public internet."""


def refusal(ip: IPAddress) -> str | None:
    """Why ``ip`` is not a public internet address (e.g. ``"a loopback address"``), or None if it is one.

    IPv6 forms that carry an IPv4 address (IPv4-mapped ``::ffff:a.b.c.d``, NAT64 ``64:ff9b::/96``,
    6to4 ``2002::/16``) are judged by the IPv4 address they carry.
    """
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            return "a link-scoped address"
        for form, embedded in (
            ("IPv4-mapped", ip.ipv4_mapped),
            ("NAT64", ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF) if ip in _NAT64 else None),
            ("6to4", ip.sixtofour),
        ):
            if embedded is not None:
                reason = refusal(embedded)
                return f"{reason} in {form} form" if reason else None
        if ip in _NAT64_LOCAL:
            return "a local-use NAT64 address"
    # Order matters only for the wording: the most specific name first.
    if ip.is_unspecified:
        return "the unspecified address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_multicast:
        return "a multicast address"
    if isinstance(ip, ipaddress.IPv4Address) and ip in _SHARED:
        return "a carrier-grade NAT (shared) address"
    if ip.is_reserved:
        return "a reserved address"
    if ip.is_private:
        return "a private address"
    if isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local:
        return "a site-local address"
    if not ip.is_global:
        return "an address that is not globally routable"
    return None


def allowed(ip: IPAddress, networks: tuple[Network, ...]) -> str | None:
    """``refusal(ip)``, unless ``ip`` is in one of the explicitly allowed ``networks``."""
    reason = refusal(ip)
    if reason and any(ip in network for network in networks):
        return None
    return reason


def literal_address(host: str) -> IPAddress | None:
    """The IP address ``host`` spells, in any form a resolver accepts, or None for a name.

    ``"127.0.0.1"``, ``"2130706433"``, ``"0x7f.1"``, ``"0177.0.0.1"``, ``"[::1]"`` and
    ``"::ffff:127.0.0.1"`` all give an address.
    """
    host = host.strip().strip("[]")
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _INET_ATON.fullmatch(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:  # e.g. "09": not valid octal, so it is a (strange) name
            return None
    return None


def _refused(host: str, ip: IPAddress, reason: str) -> BlockedAddress:
    if host.strip("[]") == str(ip):
        where = str(ip)
    elif literal_address(host) == ip:
        where = f"{host} ({ip})"
    else:
        where = f"{host} resolves to {ip}, which"
    return BlockedAddress(
        f"{where} is {reason}, not a public internet address. Feeds are fetched only from public "
        "addresses (FEEDS_ALLOW_PRIVATE_NETWORKS)."
    )


def check_literal_host(host: str, networks: tuple[Network, ...] = ()) -> None:
    """Raise BlockedAddress if ``host`` is a literal non-public address or a localhost name (no DNS).

    Addresses in ``networks`` (FEEDS_ALLOW_PRIVATE_NETWORKS) pass.
    """
    if _LOCALHOST.fullmatch(host.strip()) and allowed(_LOOPBACK, networks):
        raise BlockedAddress(
            f"{host} is a loopback name, not a public internet address. Feeds are fetched only from "
            "public addresses (FEEDS_ALLOW_PRIVATE_NETWORKS)."
        )
    ip = literal_address(host)
    if ip is not None:
        reason = allowed(ip, networks)
        if reason:
            raise _refused(host, ip, reason)


Resolver = Callable[[str, int], Awaitable[list[str]]]


async def system_resolver(host: str, port: int) -> list[str]:
    """The addresses the operating system's resolver (getaddrinfo) gives for ``host``, in its order."""
    loop = asyncio.get_running_loop()
    answers = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(sockaddr[0]) for *_, sockaddr in answers))


resolver: Resolver = system_resolver


@contextmanager
def use_resolver(replacement: Resolver) -> Iterator[None]:
    """Resolve host names with ``replacement`` inside the block (tests and benchmarks: no real DNS)."""
    global resolver
    previous, resolver = resolver, replacement
    try:
        yield
    finally:
        resolver = previous


async def resolve_checked(host: str, port: int, networks: tuple[Network, ...] = ()) -> list[IPAddress]:
    """Resolve ``host`` once and return its addresses, all of them checked.

    Raises BlockedAddress if any answer is neither public nor in ``networks``: a name that
    mixes public and private answers is refused rather than trimmed. Raises OSError
    (socket.gaierror) when the name does not resolve.
    """
    check_literal_host(host, networks)
    addresses = []
    for answer in await resolver(host, port):
        ip = ipaddress.ip_address(answer)
        reason = allowed(ip, networks)
        if reason:
            raise _refused(host, ip, reason)
        addresses.append(ip)
    if not addresses:
        raise socket.gaierror(socket.EAI_NONAME, f"{host} has no addresses")
    return addresses
