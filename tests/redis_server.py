"""A redis-server of a test's own, on a free loopback port, that the test can stop and restart."""

import socket
import subprocess
import time
from pathlib import Path

import redis


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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
