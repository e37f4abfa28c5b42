"""wait_replicas=N: an enqueue returns once N replicas have the job (Redis's WAIT on the write's own
connection), or raises ReplicasNotConfirmed; a bulk enqueue pays one WAIT; the outbox keeps a row whose
write was not confirmed. A real primary and replica (tests/redis_topology.py)."""

import contextlib
import logging
import signal
import threading

import pytest
from django.db import connections, transaction
from saq.job import Status

from tasks_app import enqueue, enqueue_many, enqueue_on_commit
from tasks_app.engine import records
from tasks_app.enqueueing import outbox
from tasks_app.enqueueing.connections import background, get_queue
from tasks_app.exceptions import ReplicasNotConfirmed, TasksAppError
from tasks_app.models import OutboxEntry
from tests.redis_topology import SentinelTopology
from tests.sampleapp.models import Note

from .helpers import run_burst, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def pair(tmp_path):
    """A primary and one replica, no sentinels: the queue URL names the primary itself."""
    with SentinelTopology(tmp_path, replicas=1, sentinels=0) as started:
        yield started


@pytest.fixture
def replicated(settings, pair):
    primary, replica = pair.nodes
    url = f"redis://127.0.0.1:{primary.port}/0?wait_replicas=1"  # wait_timeout: the default, 1000 ms
    settings.SAQ = {**settings.SAQ, "QUEUES": {"default": {"URL": url}}}
    yield pair.client(primary.port), pair.client(replica.port), replica
    if replica.alive():
        replica.kill(signal.SIGCONT)


def resume(replicated) -> None:
    """SIGCONT the stopped replica and wait until it holds every write of the primary: the next WAIT
    is then answered within its timeout however long the replica takes to be scheduled again."""
    primary, replica, replica_process = replicated
    replica_process.kill(signal.SIGCONT)
    wait_until(
        lambda: (
            replica.info("replication").get("slave_repl_offset") == primary.info("replication")["master_repl_offset"]
        ),
        message="the replica to catch up",
    )


def test_the_queue_entry_may_set_them_and_a_bad_value_is_a_check_error(settings):
    from django.core import checks

    from tasks_app import conf

    url = "redis://127.0.0.1:6379/0"
    settings.SAQ = {**settings.SAQ, "QUEUES": {"default": {"URL": url, "WAIT_REPLICAS": 2, "WAIT_TIMEOUT": 250}}}
    config = conf.queue_config("default")
    assert (config.url, config.wait_replicas, config.wait_timeout) == (url, 2, 250)
    settings.SAQ = {**settings.SAQ, "QUEUES": {"default": {"URL": url + "?wait_replicas=-1"}}}
    [error] = [e for e in checks.run_checks() if e.id == "tasks_app.E001"]
    assert "wait_replicas='-1' must be a whole number of at least 0" in error.msg
    settings.SAQ = {**settings.SAQ, "QUEUES": {"default": {"URL": url, "WAIT_TIMEOUT": "soon"}}}
    [error] = [e for e in checks.run_checks() if e.id == "tasks_app.E001"]
    assert """SAQ["QUEUES"]["default"]["WAIT_TIMEOUT"]='soon' must be a whole number of at least 1""" in error.msg


def waits(client) -> int:
    return int(client.info("commandstats").get("cmdstat_wait", {}).get("calls", 0))


def test_an_enqueue_returns_once_the_replica_has_the_job(replicated):
    primary, replica, _ = replicated
    enqueue("add_note", text="first")  # a fresh Redis has no scripts: the first call loads it and runs again
    before = waits(primary)
    job = enqueue("add_note", text="on two servers")
    # Read from the replica at once: no waiting, no polling. WAIT already confirmed it is there.
    assert replica.exists(job.id)
    assert waits(primary) == before + 1


def test_a_bulk_enqueue_pays_one_wait(replicated):
    primary, replica, _ = replicated
    jobs = enqueue_many("add_note", [{"text": f"bulk {i}"} for i in range(300)])
    assert replica.exists(*[job.id for job in jobs]) == 300
    assert waits(primary) == 1


def test_a_rewrite_that_queues_nothing_waits_for_no_replica(replicated):
    """An abort request (like a progress report) puts no work on the queue: no WAIT for it."""
    primary, _, _ = replicated
    job = enqueue("add_note", text="to abort")
    before = waits(primary)

    async def abort():
        return await records.request_abort(get_queue(), job.key, "not wanted")

    aborted, changed = background.run(abort())
    assert changed and aborted.status == Status.ABORTED
    assert waits(primary) == before


def test_too_few_replicas_raise_a_clear_error_and_the_outbox_keeps_the_row(replicated, settings):
    _, _, replica_process = replicated
    url = settings.SAQ["QUEUES"]["default"]["URL"] + "&wait_timeout=300"
    settings.SAQ = {**settings.SAQ, "QUEUES": {"default": {"URL": url}}}
    replica_process.kill(signal.SIGSTOP)  # alive but silent: WAIT times out
    with pytest.raises(ReplicasNotConfirmed) as raised:
        enqueue("add_note", text="unconfirmed")
    assert isinstance(raised.value, TasksAppError)
    assert str(raised.value).startswith("Redis confirmed this write on 0 of 1 replica(s) within 300 ms")
    with transaction.atomic():
        key = enqueue_on_commit("add_note", text="on commit")
    row = OutboxEntry.objects.get(job_key=key)  # not confirmed: left for the drain
    assert "0 of 1 replica(s)" in row.last_error
    resume(replicated)
    assert background.run(outbox.drain(grace=0)) == 1
    assert not OutboxEntry.objects.exists()
    run_burst()
    assert Note.objects.filter(text="on commit").exists()


def test_a_retry_written_by_the_worker_waits_for_the_replica_too(replicated):
    primary, replica, _ = replicated
    job = enqueue("flaky", fail_times=1)
    before = waits(primary)
    run_burst()
    assert waits(primary) > before  # the retry's re-queue was confirmed
    assert b'"status": "complete"' in replica.get(job.id)


def test_a_redelivered_row_does_not_run_its_written_job_again(replicated, settings):
    _, _, replica_process = replicated
    url = settings.SAQ["QUEUES"]["default"]["URL"] + "&wait_timeout=300"
    settings.SAQ = {**settings.SAQ, "QUEUES": {"default": {"URL": url}}}
    replica_process.kill(signal.SIGSTOP)
    with transaction.atomic():
        key = enqueue_on_commit("add_note", text="written once")
    assert OutboxEntry.objects.filter(job_key=key).exists()  # on the primary, unconfirmed: the row stays
    rows: list[bool] = []

    def once_it_has_run() -> None:
        # The job has run; its worker waits for a replica to confirm the outcome. The row is still
        # unconfirmed: delivering it again (here, or the worker's own drain) enqueues nothing, and
        # the row stays.
        wait_until(lambda: Note.objects.filter(text="written once").exists(), message="the job to run")
        try:
            with contextlib.suppress(ReplicasNotConfirmed):
                background.run(outbox.drain(grace=0))
            rows.append(OutboxEntry.objects.filter(job_key=key).exists())
        finally:
            connections.close_all()
            resume(replicated)

    helper = threading.Thread(target=once_it_has_run)
    helper.start()
    run_burst()  # returns once the replica is back and has confirmed the outcome
    helper.join()
    assert rows == [True]  # still no replica then: the row stayed
    assert background.run(outbox.drain(grace=0)) in (0, 1)  # confirmed now (here, or by the worker's drain)
    assert not OutboxEntry.objects.exists()
    run_burst()
    assert Note.objects.filter(text="written once").count() == 1  # and the job did not run again


def on_both(settings, replica, *args, **kwargs):
    """``enqueue(*args, **kwargs)`` without waiting for the replica, then until the replica holds the job:
    a test's set-up, which a WAIT cut short by a loaded machine (a slow replica) must not fail."""
    durable = settings.SAQ["QUEUES"]["default"]["URL"]
    settings.SAQ = {**settings.SAQ, "QUEUES": {"default": {"URL": durable.split("?")[0]}}}
    job = enqueue(*args, **kwargs)
    wait_until(lambda: replica.exists(job.id), message="the replica to hold the job")
    settings.SAQ = {**settings.SAQ, "QUEUES": {"default": {"URL": durable}}}
    return job


def burst_while(replicated, caplog, meanwhile) -> None:
    """``runworker --burst`` here while ``meanwhile()`` runs in a thread of its own, which then resumes
    the stopped replica (always: the worker waits for it); raises what ``meanwhile`` raised."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            meanwhile()
        except BaseException as exc:  # raised in the test's thread below
            errors.append(exc)
        finally:
            connections.close_all()
            resume(replicated)

    helper = threading.Thread(target=run)
    helper.start()
    with caplog.at_level(logging.INFO, logger="tasks_app.worker"):
        run_burst()
    helper.join()
    assert not errors, errors


def waits_for_confirmation(caplog) -> None:
    lost = "Lost the replicas' confirmation"
    wait_until(lambda: any(lost in m for m in caplog.messages), message="the worker to say it waits")


def test_a_workers_outcome_waits_for_the_replica(replicated, settings, caplog):
    """An outcome the primary alone holds is lost in a failover, and the job runs again: on a durable
    queue the worker retries it until a replica confirms it, and says so once each way."""
    primary, replica, replica_process = replicated
    url = settings.SAQ["QUEUES"]["default"]["URL"] + "&wait_timeout=300"
    settings.SAQ = {**settings.SAQ, "QUEUES": {"default": {"URL": url}}}
    job = on_both(settings, replica, "add_note", text="outcome confirmed")
    replica_process.kill(signal.SIGSTOP)
    seen: list[str] = []

    def once_it_has_run() -> None:
        wait_until(lambda: Note.objects.filter(text="outcome confirmed").exists(), message="the job to run")
        # Complete on the primary, and the worker still waits: the replica has the job active.
        wait_until(lambda: b'"status": "complete"' in (primary.get(job.id) or b""), message="the outcome")
        seen.append(primary.get(job.id).decode())
        waits_for_confirmation(caplog)

    burst_while(replicated, caplog, once_it_has_run)
    assert '"status": "complete"' in seen[0]
    assert b'"status": "complete"' in replica.get(job.id)  # confirmed before the worker moved on
    lines = [m for m in caplog.messages if "replicas' confirmation" in m]
    assert len(lines) == 2, caplog.messages
    assert lines[0].startswith("Lost the replicas' confirmation (Redis confirmed this write on 0 of 1 replica(s)")
    assert lines[1].startswith("The replicas' confirmation is back after ")


def test_an_unconfirmed_outcome_whose_job_moved_on_is_unknown(replicated, settings, caplog):
    """The worker writes an unconfirmed outcome again until a replica confirms it. If the job moved on
    meanwhile (its key enqueued anew, as a debounced or cron key is), that write is refused. The first
    write may have been kept (as here: the replica was only paused) or lost in a failover (and the job
    run again elsewhere): nothing in Redis tells, so the outcome is "unknown", not "complete" nor a lost
    attempt, and the line says which outcome was written."""
    _, replica, replica_process = replicated
    on_both(settings, replica, "add_note", key="note", text="first")
    replica_process.kill(signal.SIGSTOP)

    def once_it_has_run() -> None:
        wait_until(lambda: Note.objects.filter(text="first").exists(), message="the job to run")
        waits_for_confirmation(caplog)
        with contextlib.suppress(ReplicasNotConfirmed):  # on the primary, unconfirmed
            enqueue("add_note", key="note", text="second", delay=60)

    burst_while(replicated, caplog, once_it_has_run)
    outcomes = [r.outcome for r in caplog.records if getattr(r, "job_key", None) == "note" and hasattr(r, "outcome")]
    assert outcomes == ["unknown", "unknown"], caplog.messages  # the explanation, then the attempt's line
    assert "Job note's outcome (complete) was written but no replica confirmed it" in caplog.text
    assert "taken over" not in caplog.text
    lines = [m for m in caplog.messages if "replicas' confirmation" in m]
    assert len(lines) == 2 and lines[1].startswith("The replicas' confirmation is back"), lines

    async def stored():
        return await get_queue().job("note")

    assert background.run(stored()).kwargs == {"text": "second"}  # due in a minute, untouched
