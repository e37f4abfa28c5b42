"""The harness's network: one service address for every server, and worker "hosts" in network namespaces.

Addresses are the harness's own, in 10.77.<site>.0/24, where ``site`` (1-250) is the first
number no other run on this machine holds (its service address is the lock):

- ``10.77.<site>.1/32`` on the loopback link ``lo`` (a kernel may have no dummy links): Redis, the
  sentinels, the ledger and the PostgreSQL forwarder listen there, so that the harness (in the root
  namespace) and every host reach them at the same address, and the sentinels name a primary everyone can reach;
- host ``n`` (1, 2, ...): namespace ``dh<site>-host<n>``, a veth pair ``dh<site>h<n>`` (root side,
  ``10.77.<site>.<4n+1>/30``) / ``dh<site>w<n>`` (in the namespace, ``.<4n+2>/30``) and a default
  route through it. The service address is a local address of the root namespace, so packets to it
  are delivered there, without forwarding.

A partition sets the namespace's end of the veth down (``ip link set ... down`` inside it): the
host reaches nothing, its processes keep running; healing sets it up again and restores the route.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass

from .cleanup import Resources

PREFIX = "10.77"
MAX_HOSTS = 60  # 4n+2 must stay under 255


def ip(*args: str, netns: str | None = None) -> None:
    """Run ``ip args`` (in ``netns``); raises RuntimeError with ip's message when it fails."""
    argv = ["ip", *(["-n", netns] if netns else []), *args]
    result = subprocess.run(argv, capture_output=True, text=True)
    if result.returncode:
        raise RuntimeError(f"{' '.join(argv)}: {result.stderr.strip()}")


@dataclass(frozen=True)
class Host:
    """A worker host: a network namespace with one link to the root namespace."""

    site: int
    number: int

    @property
    def name(self) -> str:
        return f"host{self.number}"

    @property
    def netns(self) -> str:
        return f"dh{self.site}-host{self.number}"

    @property
    def outer_link(self) -> str:
        return f"dh{self.site}h{self.number}"

    @property
    def inner_link(self) -> str:
        return f"dh{self.site}w{self.number}"

    @property
    def outer_address(self) -> str:
        return f"{PREFIX}.{self.site}.{4 * self.number + 1}"

    @property
    def address(self) -> str:
        return f"{PREFIX}.{self.site}.{4 * self.number + 2}"

    def exec_argv(self, argv: list[str]) -> list[str]:
        """``argv`` run inside this host (``ip netns exec`` execs it: the PID is the command's)."""
        return ["ip", "netns", "exec", self.netns, *argv]

    def cut(self) -> None:
        """Cut this host off from everything (its side of the link down)."""
        ip("link", "set", self.inner_link, "down", netns=self.netns)

    def heal(self) -> None:
        """Link up again; the default route went with the link, so it is added back."""
        ip("link", "set", self.inner_link, "up", netns=self.netns)
        ip("route", "replace", "default", "via", self.outer_address, netns=self.netns)


class Network:
    """The service address and the hosts of one run; everything made is registered in ``resources``."""

    def __init__(self, resources: Resources) -> None:
        self.resources = resources
        self.site = self._claim_site()
        self.hosts: list[Host] = []

    @property
    def service_address(self) -> str:
        return f"{PREFIX}.{self.site}.1"

    def _claim_site(self) -> int:
        for site in range(1, 251):
            address = f"{PREFIX}.{site}.1/32"
            try:
                ip("addr", "add", address, "dev", "lo")
            except RuntimeError as exc:
                if "exists" in str(exc) or "already assigned" in str(exc):
                    continue  # another run's
                raise RuntimeError(f"Cannot add an address (the harness needs root, as CI has): {exc}") from None
            self.resources.callback(f"address {address}", lambda a=address: ip("addr", "del", a, "dev", "lo"))
            return site
        raise RuntimeError("No free 10.77.<site>.0/24 for the harness: 250 runs are going on, or left over.")

    def add_host(self) -> Host:
        host = Host(self.site, len(self.hosts) + 1)
        if host.number > MAX_HOSTS:
            raise ValueError(f"At most {MAX_HOSTS} hosts per run.")
        ip("netns", "add", host.netns)
        self.resources.namespace(host.netns)  # deleting it deletes both ends of the veth
        ip("link", "add", host.outer_link, "type", "veth", "peer", "name", host.inner_link)
        self.resources.link(host.outer_link)
        ip("link", "set", host.inner_link, "netns", host.netns)
        ip("addr", "add", f"{host.outer_address}/30", "dev", host.outer_link)
        ip("link", "set", host.outer_link, "up")
        ip("addr", "add", f"{host.address}/30", "dev", host.inner_link, netns=host.netns)
        ip("link", "set", "lo", "up", netns=host.netns)
        ip("link", "set", host.inner_link, "up", netns=host.netns)
        ip("route", "add", "default", "via", host.outer_address, netns=host.netns)
        self.hosts.append(host)
        return host
