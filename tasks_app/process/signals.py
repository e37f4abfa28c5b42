"""How SIGTERM/SIGINT/SIGHUP are read: the first asks for a graceful stop, a later one forces it, and one
after that has a supervisor kill its children."""

from __future__ import annotations

import signal
import time

# SIGHUP too: closing the terminal or ssh session a worker was started from sends it, as does an
# ``ExecReload=kill -HUP``; its default action ended the worker at once, its jobs left to the sweep.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

# One request often arrives twice at once: `uv run` forwards the signal its child also got,
# and systemd signals every process in the unit's cgroup. Only a signal this much later forces.
DUPLICATE_WINDOW_S = 1.0


class StopRequests:
    def __init__(self) -> None:
        self.first: float | None = None
        self.forced_at: float | None = None

    @property
    def forced(self) -> bool:
        return self.forced_at is not None

    def receive(self) -> str | None:
        """Returns "stop" for the first signal, "force" for a later one, "kill" for one after that (a
        supervisor then kills its children), None for a duplicate (within ``DUPLICATE_WINDOW_S`` of the last)."""
        now = time.monotonic()
        if self.first is None:
            self.first = now
            return "stop"
        if now - (self.forced_at or self.first) < DUPLICATE_WINDOW_S:
            return None
        if self.forced_at is None:
            self.forced_at = now
            return "force"
        return "kill"

    @property
    def stopping(self) -> bool:
        return self.first is not None
