"""A redis-server of a test's own, on a free loopback port, that the test can stop and restart."""

import socket
import subprocess
import time
from pathlib import Path

import redis

# Ports free_port() has handed out in this process: each is released before its server binds it.
_handed_out: set[int] = set()


def free_port(address: str = "127.0.0.1") -> int:
    """A TCP port of ``address`` nothing listens on, and never one this process was given before.

    The port is found by binding to 0 and released at once, for the server to bind. Two picks made before
    their servers start (a primary and its replica) could otherwise get the same port: the kernel handed
    48553 to both in one CI run, and the replica failed with "Address already in use"."""
    while True:
        with socket.socket() as sock:
            sock.bind((address, 0))
            port = sock.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port


class RedisServer:
    def __init__(self, directory: Path, port: int | None = None, persistent: bool = True) -> None:
        self.directory = directory
        self.port = port or free_port()
        self.persistent = persistent
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "RedisServer":
        # Persistent: appendfsync always, so a restart keeps every acknowledged write, as production Redis should.
        persistence = ["--appendonly", "yes", "--appendfsync", "always"] if self.persistent else ["--appendonly", "no"]
        return self._launch(["redis-server", *persistence])

    def _launch(self, argv: list[str], env: dict[str, str] | None = None) -> "RedisServer":
        """Start ``argv`` (a redis-server and its options) on this port and directory; return once it answers."""
        self.process = subprocess.Popen(
            [*argv, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory), "--save", ""],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis(port=self.port)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                client.close()
                return self
            except redis.ConnectionError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port)
