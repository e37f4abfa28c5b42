"""``runworker --workers N`` and ``--reload``: worker processes, supervised.

SIGTERM or SIGINT to the supervisor is forwarded to every child, which then stops
cleanly; a second signal is forwarded too and forces them. A child that dies is
restarted, with backoff if it keeps dying; one that keeps dying right after starting
makes the supervisor give up, and so does a child that exits with code 2 (it could not
reach Redis or the database). Children get SIGTERM if the supervisor itself is killed,
and stop as on a signal. A child is never killed unless a third signal asks for it.

With ``reload``, a change to a loaded Python file stops the children cleanly (their
in-flight jobs get the grace period, then go back to the queue) and starts new ones once they
have exited: one whose sync task's thread runs on keeps its job until it returns (see
``engine/stopping.py``), and is waited for.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from django.utils import autoreload

from ..backoff import backoff
from ..exceptions import WorkersGaveUp
from .signals import STOP_SIGNALS, StopRequests

logger = logging.getLogger("tasks_app.supervisor")

PR_SET_PDEATHSIG = 1
# A child that exits this soon after starting, this many times in a row, is crash-looping.
YOUNG_S = 10.0
GIVE_UP_AFTER = 5
EXIT_UNREACHABLE = 2  # runworker's code for "Redis or the database cannot be reached"
POLL_S = 0.1
RELOAD_POLL_S = 1.0


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
    backoff: float = 0.0
    deaths: int = 0  # in a row, each within 30 s of its start
    young_deaths: int = 0
    forwarded: int = 0  # the last stop request (LEVELS) this process was sent

    def start(self) -> None:
        # Own session: a Ctrl-C in the terminal reaches the supervisor only, which forwards it once.
        self.process = subprocess.Popen(self.argv, preexec_fn=_die_with_parent, start_new_session=True)
        self.forwarded = 0
        self.started = time.monotonic()
        logger.info("worker %d started (pid %d)", self.index, self.process.pid)

    def signal(self, signum: int) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signum)


class CodeChanges:
    """Modification times of every loaded Python file; ``changed()`` names one that changed."""

    def __init__(self) -> None:
        self.mtimes = self._snapshot()

    @staticmethod
    def _snapshot() -> dict[Path, float]:
        mtimes = {}
        for path in autoreload.iter_all_python_module_files():
            with contextlib.suppress(OSError):
                mtimes[path] = path.stat().st_mtime
        return mtimes

    def changed(self) -> Path | None:
        current = self._snapshot()
        changed = next((path for path, mtime in current.items() if self.mtimes.get(path, mtime) != mtime), None)
        self.mtimes = current
        return changed


WORKERS_PER_CPU = 4  # past that, processes only share the same CPUs: --concurrency is the way to more at once


def max_workers() -> int:
    """The most ``--workers`` this host is given: ``WORKERS_PER_CPU`` per CPU this process may run on."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return WORKERS_PER_CPU * cpus


# A stop request's level: a child is sent each level once (SIGTERM, SIGTERM again to force, SIGKILL).
LEVELS = {"stop": 1, "force": 2, "kill": 3}


class Supervisor:
    def __init__(
        self, child_argvs: list[list[str]], grace_period: float, reload: bool = False, first_backoff: float = 1.0
    ) -> None:
        self.children = [Child(index, argv) for index, argv in enumerate(child_argvs)]
        self.grace_period = grace_period
        self.first_backoff = first_backoff
        self.requests = StopRequests()
        self.level = 0  # the last stop request's (LEVELS)
        self.code_changes = CodeChanges() if reload else None

    def _on_signal(self, signum: int, frame) -> None:
        request = self.requests.receive()
        if request is None:
            return  # the same request, delivered twice
        logger.warning("%s: %s %d worker(s)", signal.Signals(signum).name, request, len(self.children))
        self.level = LEVELS[request]
        self._forward()

    def _forward(self) -> None:
        # Each running child gets the last stop request once, including one started while it came in.
        for child in self.children:
            if child.process is not None and child.forwarded < self.level:
                child.forwarded = self.level
                child.signal(signal.SIGKILL if self.level == LEVELS["kill"] else signal.SIGTERM)

    def _start(self, child: Child) -> None:
        child.start()
        # A signal that came in during the start (the handler runs between two bytecodes of this thread)
        # found no process to send to: this child would run on, unstopped.
        if self.requests.stopping:
            self._forward()

    def run(self, burst: bool = False) -> int:
        """Run until stopped; returns the exit code. Raises ``WorkersGaveUp`` when the children cannot run."""
        previous = {s: signal.signal(s, self._on_signal) for s in STOP_SIGNALS}
        try:
            for child in self.children:
                if self.requests.stopping:
                    break  # the others were never started: nothing of theirs to stop
                self._start(child)
            return self._watch(burst)
        except WorkersGaveUp:
            self._stop_all(signal_children=True)
            raise
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _watch(self, burst: bool) -> int:
        codes: dict[int, int] = {}
        next_reload_check = time.monotonic() + RELOAD_POLL_S
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
            if self.code_changes is not None and time.monotonic() >= next_reload_check:
                changed = self.code_changes.changed()
                if changed is not None:
                    self._reload(changed)
                next_reload_check = time.monotonic() + RELOAD_POLL_S
            time.sleep(POLL_S)
        return self._stop_all()

    def _restart(self, child: Child, code: int) -> None:
        lived = time.monotonic() - child.started
        if lived < YOUNG_S and code == EXIT_UNREACHABLE:
            raise WorkersGaveUp(
                f"worker {child.index} could not start: Redis or the database is unreachable (its message is "
                "above). Fix that, then start the workers again.",
                EXIT_UNREACHABLE,
            )
        child.young_deaths = child.young_deaths + 1 if lived < YOUNG_S else 0
        if child.young_deaths >= GIVE_UP_AFTER:
            raise WorkersGaveUp(
                f"worker {child.index} exited within {YOUNG_S:.0f}s of starting {child.young_deaths} times in a row "
                f"(last exit code {code}); giving up. Run `manage.py runworker` without --workers to see why.",
                1,
            )
        # A child that dies young is probably crash-looping: back off up to 30 s.
        child.deaths = 0 if lived > 30 else child.deaths + 1
        child.backoff = backoff(child.deaths, self.first_backoff, 30.0)
        pid = child.process.pid if child.process else 0
        logger.error("worker %d (pid %d) exited with %d; restarting in %.0fs", child.index, pid, code, child.backoff)
        deadline = time.monotonic() + child.backoff
        while time.monotonic() < deadline and not self.requests.stopping:
            time.sleep(POLL_S)
        if not self.requests.stopping:
            self._start(child)

    def _reload(self, changed: Path) -> None:
        logger.warning(
            "%s changed: restarting %d worker(s); in-flight jobs get %.0fs to finish, then are re-queued.",
            changed,
            len(self.children),
            self.grace_period,
        )
        for child in self.children:
            child.signal(signal.SIGTERM)
        self._wait_all()
        for child in self.children:
            self._failed_exit(child)  # said; the reload goes on
        if not self.requests.stopping:
            for child in self.children:
                if self.requests.stopping:
                    break
                child.young_deaths = 0
                self._start(child)

    def _wait_all(self) -> None:
        """Until every child has exited. A child keeps a job whose task does not stop when cancelled (a sync
        task's thread) until it returns, heartbeated, so it is waited for, not killed: its job would be run
        again elsewhere. Said once, past the grace period and 10 s more; a third signal kills them."""
        say_at: float | None = time.monotonic() + self.grace_period + 10
        while running := [c for c in self.children if c.process is not None and c.process.poll() is None]:
            if say_at is not None and time.monotonic() >= say_at:
                say_at = None
                logger.warning(
                    "Waiting for %s to stop: a task still runs that does not stop when cancelled (a sync task's "
                    "thread; its job is kept until it returns), or its event loop is blocked. %s kills them "
                    "(their jobs then run again once their heartbeat lapses).",
                    ", ".join(f"worker {c.index} (pid {c.process.pid})" for c in running),
                    "A third signal" if self.requests.forced else "A second signal forces the stop; a third",
                )
            time.sleep(POLL_S)

    def _stop_all(self, signal_children: bool = False) -> int:
        if signal_children:  # otherwise _on_signal already forwarded the request
            for child in self.children:
                child.signal(signal.SIGTERM)
        self._wait_all()
        # SIGKILLed (a third signal, or from outside): its jobs were not put back. A child that a SIGTERM ended
        # before it could handle one (still starting) held none.
        killed = [c for c in self.children if c.process is not None and c.process.returncode == -signal.SIGKILL]
        for child in killed:
            logger.error(
                "worker %d (pid %d) ended by SIGKILL; its jobs run again once their heartbeat lapses",
                child.index,
                child.process.pid,
            )
        # A child's own non-zero exit (jobs left active with Redis down: see its lines above) is the run's too.
        codes = [code for child in self.children if (code := self._failed_exit(child))]
        return max([1] * bool(killed) + codes, default=0)

    @staticmethod
    def _failed_exit(child: Child) -> int:
        """A child's exit code when it stopped with one of its own (> 0), logged; else 0."""
        code = child.process.returncode if child.process is not None else None
        if not code or code < 0:
            return 0
        logger.error(
            "worker %d (pid %d) stopped with exit code %d (see its lines above)", child.index, child.process.pid, code
        )
        return code


def child_command() -> list[str]:
    """How to start ``manage.py`` again, the way this process was started."""
    script = sys.argv[0]
    if script.endswith("manage.py"):
        return [sys.executable, script]
    return [sys.executable, "-m", "django"]
