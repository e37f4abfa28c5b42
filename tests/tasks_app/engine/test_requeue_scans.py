"""A running or ended job goes back on its queue without a scan of the queued list (LREM is O(n): on a
queue a million jobs deep, each retry would hold Redis for milliseconds); a job that may be listed is
still taken off it first, so that no job is ever listed twice. Seen through Redis's MONITOR: the
commands each script ran. That rests on a running job never being on a queued list, nor off the active
list, whatever SAQ's API is asked or however long a worker stalls between its two steps of a take."""

import dataclasses

from saq.job import Job, Status

from tasks_app.engine import attempts, pausing, records, sweeping

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


def test_a_job_marked_active_through_saqs_api_while_queued_leaves_the_queue_and_is_listed_once_when_retried(
    open_queue,
):
    # SAQ's own test_iter_jobs marks a waiting job ACTIVE with job.update(); SAQ's Worker, which runs a job
    # even when that update is refused, would otherwise take it twice once a retry listed it again.
    async def scenario():
        async with open_queue() as queue:
            job = await queue.enqueue(Job("f", key="j", retries=3))
            await job.update(status=Status.ACTIVE)
            marked = (await _listed(queue, job.id), await queue.redis.lpos(queue.active_key, job.id) is not None)
            await queue.retry(job, "again")
            return marked, await _listed(queue, job.id), await sweeping.check_consistency(queue)

    (listed_when_marked, running_listed), listed, report = run(scenario())
    assert listed_when_marked == 0 and running_listed
    assert listed == 1
    assert report == {"unreferenced": [], "no_ttl": [], "dangling": []}


def _stalled_take(queue):
    """Worker 1 moves the job to the active list (BLMOVE) and stalls past ORPHAN_RECHECK_S: the sweep puts it
    back on the queue and worker 2 takes it. Returns worker 2's attempt and worker 1's ACTIVATE, to run now."""

    async def go():
        await records.submit(queue, Job("f", key="j", retries=3, heartbeat=30, timeout=60))
        job_id = await queue.redis.blmove(queue.queued_key, queue.active_key, 1, "LEFT", "RIGHT")
        await sweeping.sweep(queue, lock=0)
        taken = await attempts.take(queue, "w2")
        keys = [queue.active_key, job_id, queue.queued_key, queue.paused_key, queue.incomplete_key]
        return taken, lambda: queue._script("activate", keys, ["w1"])

    return go()


def test_a_stalled_take_leaves_the_job_it_lost_to_its_new_worker(open_queue):
    async def scenario():
        async with open_queue() as queue:
            taken, activate = await _stalled_take(queue)
            late = await activate()
            active = [entry.decode() for entry in await queue.redis.lrange(queue.active_key, 0, -1)]
            return taken.id, late, active, await _listed(queue, taken.id), (await queue.job("j")).worker_id

    job_id, late, active, listed, worker = run(scenario())
    assert late is None  # nothing for worker 1
    assert active == [job_id] and listed == 0 and worker == "w2"  # worker 2's attempt, still on the active list


def test_a_stalled_take_on_a_paused_queue_does_not_put_a_running_job_back_on_the_queue(open_queue):
    async def scenario():
        async with open_queue() as queue:
            taken, activate = await _stalled_take(queue)
            await pausing.pause(queue, "ops")
            late = await activate()
            await pausing.resume(queue)
            running_listed = await _listed(queue, taken.id)
            await attempts.retry_attempt(queue, taken, "boom")
            return late, running_listed, await _listed(queue, taken.id), await sweeping.check_consistency(queue)

    late, running_listed, listed, report = run(scenario())
    assert late is None and running_listed == 0
    assert listed == 1  # once retried
    assert report == {"unreferenced": [], "no_ttl": [], "dangling": []}
