"""``runworker --workers N``: N worker processes, supervised.

SIGTERM or SIGINT to the supervisor is forwarded to every child, which then
shuts down gracefully; a second signal is forwarded too and forces them. A child
that dies is restarted, with backoff if it keeps dying. Children get SIGTERM if
the supervisor itself is killed, so none is ever left behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

from .stopping import StopRequests

logger = logging.getLogger("tasks_app.supervisor")

PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # Not on Linux: no prctl, but the supervisor still forwards signals.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Child:
    index: int
    argv: list[str]
    process: subprocess.Popen | None = None
    started: float = 0.0
    restarts: int = 0
    backoff: float = field(default=0.0)

    def start(self) -> None:
        # Own session: a Ctrl-C in the terminal reaches the supervisor only, which forwards it once.
        self.process = subprocess.Popen(self.argv, preexec_fn=_die_with_parent, start_new_session=True)
        self.started = time.monotonic()
        logger.warning("worker %d started (pid %d)", self.index, self.process.pid)

    def signal(self, signum: int) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signum)


class Supervisor:
    def __init__(self, child_argvs: list[list[str]], grace_period: float) -> None:
        self.children = [Child(index, argv) for index, argv in enumerate(child_argvs)]
        self.grace_period = grace_period
        self.requests = StopRequests()

    def _on_signal(self, signum: int, frame) -> None:
        request = self.requests.receive()
        if request is None:
            return  # the same request, delivered twice
        logger.warning("%s: %s %d worker(s)", signal.Signals(signum).name, request, len(self.children))
        for child in self.children:
            child.signal(signal.SIGTERM)

    def run(self, burst: bool = False) -> int:
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            for child in self.children:
                child.start()
            return self._watch(burst)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _watch(self, burst: bool) -> int:
        codes: dict[int, int] = {}
        while not self.requests.stopping:
            for child in self.children:
                code = child.process.poll() if child.process else None
                if code is None or child.index in codes:
                    continue
                if burst:
                    codes[child.index] = code
                    continue
                self._restart(child, code)
            if burst and len(codes) == len(self.children):
                return max(codes.values())
            time.sleep(0.1)
        return self._stop_all()

    def _restart(self, child: Child, code: int) -> None:
        lived = time.monotonic() - child.started
        # A child that dies young is probably crash-looping: back off up to 30 s.
        child.backoff = 0.0 if lived > 30 else min(30.0, max(1.0, child.backoff * 2))
        logger.error(
            "worker %d (pid %d) exited with %d; restarting in %.0fs",
            child.index,
            child.process.pid,
            code,
            child.backoff,
        )
        deadline = time.monotonic() + child.backoff
        while time.monotonic() < deadline and not self.requests.stopping:
            time.sleep(0.1)
        if not self.requests.stopping:
            child.restarts += 1
            child.start()

    def _stop_all(self) -> int:
        deadline = time.monotonic() + self.grace_period + 10
        while time.monotonic() < deadline:
            if all(child.process.poll() is not None for child in self.children):
                return 0
            time.sleep(0.1)
        for child in self.children:
            child.signal(signal.SIGKILL)
            logger.error("worker %d did not stop in time; killed", child.index)
        for child in self.children:
            child.process.wait()
        return 1


def child_command() -> list[str]:
    """How to start ``manage.py`` again, the way this process was started."""
    script = sys.argv[0]
    if script.endswith("manage.py"):
        return [sys.executable, script]
    return [sys.executable, "-m", "django"]
