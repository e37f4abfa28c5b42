"""A stop request that reaches the supervisor while it is still starting its worker processes."""

import signal
import sys
import threading
import time

from tasks_app.process import supervisor

SLEEPER = [sys.executable, "-c", "import time; time.sleep(600)"]  # SIGTERM ends it (no handler)


def run_guarded(sup: supervisor.Supervisor) -> int:
    """``sup.run()``'s exit code, asserting it returned within 15 s. Were a child left running, the supervisor
    would wait for it for 600 s: a guard kills the children after 20 s, so that the test fails, not hangs."""
    guard = threading.Timer(20, lambda: [c.signal(signal.SIGKILL) for c in sup.children])
    guard.start()
    began = time.monotonic()
    try:
        code = sup.run()
    finally:
        guard.cancel()
    assert time.monotonic() - began < 15
    return code


def test_a_signal_between_two_starts_stops_the_started_and_starts_no_more(monkeypatch):
    """The signal handler ran between two ``child.start()`` calls and stopped the children started so far;
    the loop then started the rest, which no signal ever reached, and the supervisor waited for them."""
    sup = supervisor.Supervisor([SLEEPER] * 4, grace_period=1)
    start = supervisor.Child.start

    def start_then_signal(child: supervisor.Child) -> None:
        start(child)
        if child.index == 1:
            sup._on_signal(signal.SIGTERM, None)  # as the kernel would run it, between two bytecodes

    monkeypatch.setattr(supervisor.Child, "start", start_then_signal)
    code = run_guarded(sup)
    assert [child.process is not None for child in sup.children] == [True, True, False, False]
    assert all(child.process.returncode == -signal.SIGTERM for child in sup.children[:2])
    assert code == 0


def test_a_signal_during_a_start_reaches_that_child_too(monkeypatch):
    """The handler ran while a child's process was being made: it found no process to signal."""
    sup = supervisor.Supervisor([SLEEPER] * 2, grace_period=1)
    start = supervisor.Child.start

    def signal_then_start(child: supervisor.Child) -> None:
        if child.index == 0:
            sup._on_signal(signal.SIGTERM, None)  # before this child's process exists
        start(child)

    monkeypatch.setattr(supervisor.Child, "start", signal_then_start)
    code = run_guarded(sup)
    assert sup.children[0].process.returncode == -signal.SIGTERM
    assert sup.children[1].process is None
    assert code == 0
