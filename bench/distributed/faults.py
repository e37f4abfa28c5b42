"""The fault injector: each fault is injected, lasts, and is repaired, one after another.

=================  ===========================================================================
name               what happens
=================  ===========================================================================
``kill-primary``   SIGKILL of the Redis primary; the sentinels promote the replica. Once they
                   have, the dead server is started again, as a sentinel-aware supervisor
                   would: as a replica of the new primary (``Topology.restore``).
``partition``      host 1 is cut off from Redis and PostgreSQL (its side of the link down) for
                   the duration, then healed.
``pause``          host 2's worker is stopped with SIGSTOP for the duration, then SIGCONT.
``skew``           host 3's worker is replaced by one whose clock is 5 minutes ahead (libfaketime
                   ``+300s``) for the duration, then by a normal one again.
``kill-worker``    SIGKILL of host 1's worker; a new one is started on the host at once (as systemd
                   would), and runs for the duration.
=================  ===========================================================================

``inject()`` returns the PIDs the fault hits (None: every worker, for the primary's death); those
are what may explain an execution beyond one (``checks.explain``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from .network import Host
from .topology import RedisNode, Topology
from .workers import Worker, Workers

SKEW = "+300s"


@dataclass
class Fault:
    name: str
    hosts: list[Host]
    workers: Workers
    topology: Topology
    # Set by inject(), for heal(): what was done.
    victim: Worker | None = None
    dead: RedisNode | None = None
    replacement: Worker | None = None
    notes: list[str] = field(default_factory=list)

    def worker_on(self, host: Host) -> Worker:
        return next(w for w in reversed(self.workers.running) if w.host == host)

    def inject(self) -> frozenset[int] | None:
        return FAULTS[self.name][0](self)

    def heal(self) -> None:
        FAULTS[self.name][1](self)


def _kill_primary(fault: Fault) -> None:
    fault.dead = fault.topology.kill_primary()
    return None


def _restore_primary(fault: Fault) -> None:
    """Nothing left to do: the harness restarts the dead server as soon as the failover is done."""


def _partition(fault: Fault) -> frozenset[int]:
    host = fault.hosts[0]
    host.cut()
    return frozenset(w.pid for w in fault.workers.running if w.host == host)


def _heal_partition(fault: Fault) -> None:
    fault.hosts[0].heal()


def _pause(fault: Fault) -> frozenset[int]:
    fault.victim = fault.worker_on(fault.hosts[1 % len(fault.hosts)])
    fault.victim.pause()
    return frozenset({fault.victim.pid})


def _resume(fault: Fault) -> None:
    assert fault.victim is not None
    fault.victim.resume()


def _skew(fault: Fault) -> frozenset[int]:
    host = fault.hosts[2 % len(fault.hosts)]
    normal = fault.worker_on(host)
    fault.victim = fault.workers.start(host, skew=SKEW)
    normal.killed = True  # stopped on purpose: not to be restarted
    fault.workers.stop(normal)  # SIGTERM: its running jobs finish or go back to the queue cleanly
    return frozenset()  # a skewed clock explains nothing: it must change nothing


def _unskew(fault: Fault) -> None:
    assert fault.victim is not None
    fault.workers.start(fault.victim.host)
    fault.victim.killed = True
    fault.workers.stop(fault.victim)


def _kill_worker(fault: Fault) -> frozenset[int]:
    fault.victim = fault.worker_on(fault.hosts[0])
    fault.victim.kill()
    fault.replacement = fault.workers.start(fault.victim.host)
    return frozenset({fault.victim.pid})


def _nothing(fault: Fault) -> None:
    return None


FAULTS: dict[str, tuple[Callable[[Fault], frozenset[int] | None], Callable[[Fault], None]]] = {
    "kill-primary": (_kill_primary, _restore_primary),
    "partition": (_partition, _heal_partition),
    "pause": (_pause, _resume),
    "skew": (_skew, _unskew),
    "kill-worker": (_kill_worker, _nothing),
}
