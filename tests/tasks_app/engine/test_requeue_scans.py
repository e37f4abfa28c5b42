"""A running or ended job goes back on its queue without a scan of the queued list (LREM is O(n): on a
queue a million jobs deep, each retry would hold Redis for milliseconds); a job that may be listed is
still taken off it first, so that no job is ever listed twice. Seen through Redis's MONITOR: the
commands each script ran."""

import dataclasses

from saq.job import Job, Status

from tasks_app.engine import attempts, records, sweeping

from .conftest import run, watching


async def _queue_with_backlog(queue, running_key: str) -> Job:
    await records.submit(queue, Job("f", key=running_key, retries=3, heartbeat=30, timeout=60))
    taken = await attempts.take(queue, "w1")
    for index in range(5):
        await records.submit(queue, Job("f", key=f"backlog-{index}"))
    return taken


def _scans(seen: list[str], queue) -> list[str]:
    return [command for command in seen if command.startswith("LREM") and queue.queued_key in command]


async def _listed(queue, job_id: str) -> int:
    return sum(entry.decode() == job_id for entry in await queue.redis.lrange(queue.queued_key, 0, -1))


def test_a_worker_retry_of_a_running_job_does_not_scan_the_queued_list(open_queue):
    async def scenario():
        async with open_queue() as queue:
            taken = await _queue_with_backlog(queue, "running")
            async with watching(queue) as seen:
                status = await attempts.retry_attempt(queue, taken, "boom")
            return status, _scans(seen, queue), seen, await sweeping.check_consistency(queue)

    status, scans, seen, report = run(scenario())
    assert status == Status.QUEUED
    assert any(command.startswith("LREM") for command in seen)  # the active list's entry did go
    assert scans == []
    assert report == {"unreferenced": [], "no_ttl": [], "dangling": []}


def test_the_sweep_requeues_a_dead_workers_job_without_scanning_the_queued_list(open_queue):
    async def scenario():
        async with open_queue() as queue:
            taken = await _queue_with_backlog(queue, "orphan")
            raw = await queue.redis.get(taken.id)
            async with watching(queue) as seen:
                swept = await sweeping._sweep_job(queue, raw, queue.deserialize(raw), "no heartbeat (test)")
            return swept, _scans(seen, queue), await _listed(queue, taken.id), (await queue.job("orphan")).status

    swept, scans, listed, status = run(scenario())
    assert swept and status == Status.QUEUED
    assert scans == []
    assert listed == 1


def test_retrying_a_failed_job_does_not_scan_but_requeueing_a_queued_one_does(open_queue):
    # A queued job may be listed: written back queued, its old entry is taken off first (listed once).
    async def scenario():
        async with open_queue() as queue:
            taken = await _queue_with_backlog(queue, "failing")
            await attempts.end_attempt(queue, taken, Status.FAILED, error="boom")

            def retry(job: Job) -> Job:
                return dataclasses.replace(job, status=Status.QUEUED, attempts=0, error=None)

            async with watching(queue) as failed_seen:
                _, changed = await records.compare_and_set(queue, "failing", retry)
            async with watching(queue) as queued_seen:
                _, rewritten = await records.compare_and_set(
                    queue, "backlog-0", lambda job: dataclasses.replace(job, meta={"note": "edited"})
                )
            return (
                changed and rewritten,
                _scans(failed_seen, queue),
                _scans(queued_seen, queue),
                [await _listed(queue, queue.job_id(key)) for key in ("failing", "backlog-0")],
            )

    changed, failed_scans, queued_scans, listed = run(scenario())
    assert changed
    assert failed_scans == []
    assert len(queued_scans) == 1
    assert listed == [1, 1]
