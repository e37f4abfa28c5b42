"""Everything the harness makes, so that it is all removed: processes (by PID), network namespaces and links.

``Resources`` is one registry per run. ``close()`` removes, in reverse order of creation, each
thing it was told about, and is safe to call twice; ``guard()`` makes sure it runs on a normal
exit, on an error, on Ctrl-C (SIGINT) and on SIGTERM (atexit alone misses a signal's death).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from types import FrameType

STOP_WAIT_S = 10.0  # how long a process is given to exit after SIGTERM before SIGKILL


class Resources:
    """What one run made, removed in reverse order by ``close()``."""

    def __init__(self) -> None:
        self._undo: list[tuple[str, Callable[[], None]]] = []
        self.closed = False

    def process(self, process: subprocess.Popen, *, group: bool = False) -> subprocess.Popen:
        """Track ``process`` (its PID; with ``group``, the process group it leads, for a server that
        forks a child per connection, such as socat)."""
        self._undo.append((f"process {process.pid}", lambda: stop_process(process, group=group)))
        return process

    def namespace(self, name: str) -> None:
        self._undo.append((f"netns {name}", lambda: _ip("netns", "del", name)))

    def link(self, name: str) -> None:
        self._undo.append((f"link {name}", lambda: _ip("link", "del", name)))

    def callback(self, label: str, undo: Callable[[], None]) -> None:
        self._undo.append((label, undo))

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        while self._undo:
            label, undo = self._undo.pop()
            try:
                undo()
            except Exception as exc:  # keep removing the rest; say what could not be removed
                print(f"cleanup: could not remove {label}: {exc}", file=sys.stderr)


def stop_process(process: subprocess.Popen, *, group: bool = False) -> None:
    """SIGCONT (it may be paused), SIGTERM, then SIGKILL after ``STOP_WAIT_S``; by PID (or its own group)."""
    if process.poll() is not None:
        return

    def send(signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            if group:
                os.killpg(process.pid, signum)
            else:
                process.send_signal(signum)

    send(signal.SIGCONT)
    send(signal.SIGTERM)
    try:
        process.wait(STOP_WAIT_S)
    except subprocess.TimeoutExpired:
        send(signal.SIGKILL)
        process.wait(STOP_WAIT_S)


def _ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True)
    if result.returncode and "Cannot find" not in result.stderr and "No such" not in result.stderr:
        raise RuntimeError(f"ip {' '.join(args)}: {result.stderr.strip()}")


@contextlib.contextmanager
def guard(resources: Resources) -> Iterator[Resources]:
    """Remove ``resources`` when the block ends however it ends: an error, Ctrl-C, SIGTERM, or the
    interpreter's exit (atexit, for a ``sys.exit`` from a thread or a library)."""
    atexit.register(resources.close)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, on_signal)
    try:
        yield resources
    finally:
        resources.close()
        signal.signal(signal.SIGTERM, previous)
        atexit.unregister(resources.close)
