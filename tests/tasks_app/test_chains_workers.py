"""Chains with real worker processes: a worker SIGKILLed between every two steps loses no step, runs none
out of order, and runs each again only as at-least-once allows (the step it was running)."""

import signal
import time

import pytest
from saq.job import Status

from tasks_app import chain, group, step
from tests.queue_state import stored
from tests.sampleapp.models import Note

from .helpers import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def notes() -> list[str]:
    return list(Note.objects.order_by("pk").values_list("text", flat=True))


def test_a_worker_killed_between_every_two_steps_loses_none(start_worker):
    # Each step after the first hangs on its first attempt: its worker is killed then, after its parent's
    # end was written and before it completes; the sweep of the next worker runs it again (heartbeat 1 s).
    # c2 runs beside c1 and does not hang, but the kill for c1 may still catch it between its take and its
    # outcome (a loaded machine, .ci/stress): it too is swept after 1 s, not after the default 30 s.
    later = {"hang_first": True, "heartbeat": 1}
    jobs = chain(
        step("chain_step", label="a"),
        step("chain_step", label="b", **later),
        group(step("chain_step", label="c1", **later), step("chain_step", label="c2", heartbeat=1)),
        step("chain_step", label="d", **later),
    ).enqueue()
    started = time.monotonic()
    worker = start_worker()
    for hung in ("b", "c1", "d"):
        wait_until(lambda hung=hung: f"{hung} attempt 1" in notes(), timeout=30, message=f"{hung} to start")
        worker.signal(signal.SIGKILL)
        worker.wait(5)
        worker = start_worker()
    wait_until(lambda: stored(jobs[-1].key).status == Status.COMPLETE, timeout=30, message="the chain to end")
    elapsed = time.monotonic() - started

    ran = notes()
    assert ran.count("a attempt 1") == 1 and "a attempt 2" not in ran  # a completed: never run again
    for label in ("b", "c1", "d"):
        assert ran.count(f"{label} attempt 1") == 1 and ran.count(f"{label} attempt 2") == 1
    # c2 ran once, or again if the kill for c1 caught its attempt (noted or not yet), never more.
    c2 = [note for note in ran if note.startswith("c2 ")]
    assert c2 in (["c2 attempt 1"], ["c2 attempt 1", "c2 attempt 2"], ["c2 attempt 2"]), c2
    # In order: each step only after its parents completed (their last attempt noted first).
    assert ran.index("a attempt 1") < ran.index("b attempt 1")
    assert ran.index("b attempt 2") < min(ran.index("c1 attempt 1"), ran.index(c2[0]))
    assert max(ran.index("c1 attempt 2"), ran.index(c2[-1])) < ran.index("d attempt 1")
    assert [stored(job.key).status for job in jobs] == [Status.COMPLETE] * 5
    d = stored(jobs[-1].key).result
    assert [parent["label"] for parent in d["parents"]] == ["c1", "c2"]
    assert d["parents"][0]["parents"][0]["parents"][0]["label"] == "a"
    assert elapsed < 40
