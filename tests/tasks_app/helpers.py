"""Helpers for tests that run real workers, in-process or as subprocesses."""

import contextlib
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from django.core.management import call_command
from redis.asyncio import from_url

from tasks_app.engine.queue import AtomicRedisQueue

ROOT = Path(__file__).resolve().parents[2]


def run_burst(*args: str) -> None:
    """Run ``runworker --burst`` in this process until the queue is drained."""
    call_command("runworker", "--burst", "--skip-checks", "-v", "0", *args)


def on_port(env: dict, port: int) -> dict:
    """``env`` with ``TEST_DATABASE_URL`` pointed at ``port`` on the loopback (a proxy, or a silent server)."""
    url = urlsplit(env["TEST_DATABASE_URL"])
    return {**env, "TEST_DATABASE_URL": urlunsplit(url._replace(netloc=f"{url.username}@127.0.0.1:{port}"))}


def manage(*args: str, env: dict, timeout: float = 60, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout,
        **kwargs,
    )  # fmt: skip


class WorkerProcess:
    def __init__(self, *args: str, env: dict) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "runworker", "--no-reload", "--skip-checks", *args],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for_output(self, text: str, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output:
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise AssertionError(f"{text!r} not seen in worker output:\n{self.output}")
            time.sleep(0.05)

    def signal(self, signum: int = signal.SIGTERM) -> None:
        self.process.send_signal(signum)

    def wait(self, timeout: float = 30) -> int:
        code = self.process.wait(timeout)
        self._reader.join(2)
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def wait_until(predicate, timeout: float = 20, interval: float = 0.05, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {message}")
        time.sleep(interval)


def queue_opener(url: str):
    """``opened(name="default")``: an async context manager giving a connected ``AtomicRedisQueue`` on ``url``.
    Its connections carry a client name of their own (``CLIENT LIST`` tells them from an earlier queue's)."""

    @contextlib.asynccontextmanager
    async def opened(name: str = "default"):
        queue = AtomicRedisQueue(from_url(url, client_name=f"tests-queue-{uuid.uuid4().hex[:12]}"), name=name)
        await queue.connect()
        try:
            yield queue
        finally:
            await queue.disconnect()

    return opened
