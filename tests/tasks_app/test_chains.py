"""Chains and groups (``tasks_app.chain``, ``group``, ``step``) on real Redis and PostgreSQL: results flow,
fan-in, failure propagation and its policies, the outbox, ``tasks_app.testing`` and immediate mode."""

import asyncio

import pytest
from django.db import transaction
from saq.job import Job, Status

from tasks_app import chain, group, operations, step
from tasks_app.engine import chains as engine_chains
from tasks_app.engine.sweeping import check_consistency
from tasks_app.enqueueing import chain_steps
from tasks_app.enqueueing import chains as chain_api
from tasks_app.enqueueing.connections import make_queue
from tasks_app.exceptions import ActionRefused, TaskArgumentError, TaskNotFound
from tasks_app.models import OutboxEntry
from tasks_app.testing import capture_jobs, run_jobs
from tests.queue_state import job_keys, stored
from tests.sampleapp.models import Note

pytestmark = pytest.mark.django_db(transaction=True)


def notes() -> list[str]:
    return list(Note.objects.order_by("pk").values_list("text", flat=True))


def s(label: str, **kwargs) -> chain_api.Step:
    return step("chain_step", label=label, **kwargs)


def queue_read(read):
    async def go():
        queue = make_queue("default")
        try:
            return await read(queue)
        finally:
            await queue.disconnect()

    return asyncio.run(go())


def test_results_flow_from_step_to_step_and_waiting_steps_are_not_queued(redis_db):
    jobs = chain(s("a"), s("b"), s("c")).enqueue()
    assert [stored(job.key).status for job in jobs] == [Status.QUEUED, Status.NEW, Status.NEW]
    assert queue_read(check_consistency) == {"unreferenced": [], "no_ttl": [], "dangling": []}
    run_jobs()
    assert notes() == ["a attempt 1", "b attempt 1", "c attempt 1"]
    last = stored(jobs[-1].key)
    assert last.status == Status.COMPLETE
    assert last.result == {"label": "c", "parents": [{"label": "b", "parents": [{"label": "a", "parents": []}]}]}
    assert last.meta["chain"]["parents"] == [["default", jobs[1].key]]
    assert stored(jobs[0].key).meta["chain"]["children"] == [["default", jobs[1].key]]
    # Each step's links live as long as its record: they expire with it.
    ttls = queue_read(lambda q: asyncio.gather(*(q.redis.ttl(engine_chains.links_key("default", j.key)) for j in jobs)))
    assert all(0 < ttl <= job.ttl for ttl, job in zip(ttls, jobs, strict=True)), ttls
    assert queue_read(check_consistency) == {"unreferenced": [], "no_ttl": [], "dangling": []}


def test_a_group_fans_in_with_its_results_in_order(redis_db):
    jobs = chain(s("first"), group(s("x"), s("y"), s("z")), s("last")).enqueue()
    run_jobs()
    order = notes()
    assert order[0] == "first attempt 1" and order[-1] == "last attempt 1"
    assert sorted(order[1:4]) == ["x attempt 1", "y attempt 1", "z attempt 1"]
    result = stored(jobs[-1].key).result
    assert [parent["label"] for parent in result["parents"]] == ["x", "y", "z"]
    assert all(parent["parents"][0]["label"] == "first" for parent in result["parents"])


def test_group_then_and_a_step_by_function(redis_db):
    from tests.sampleapp.tasks import chain_step

    jobs = group(s("a1"), s("a2")).then(step(chain_step, label="c")).enqueue()
    run_jobs()
    assert [p["label"] for p in stored(jobs[-1].key).result["parents"]] == ["a1", "a2"]


def test_a_failed_step_fails_the_rest_and_each_says_which_parent_failed_and_why(redis_db):
    jobs = chain(s("a"), s("b", fail=True, retries=0), s("c"), group(s("d1"), s("d2"))).enqueue()
    run_jobs()
    assert notes() == ["a attempt 1", "b attempt 1"]  # nothing after b ran
    b, c, d1, d2 = (stored(job.key) for job in jobs[1:])
    assert b.status == Status.FAILED
    assert c.status == Status.FAILED and c.attempts == 0 and c.completed
    assert c.error == f"not run: parent step chain_step ({b.key}) failed: ValueError: b broke"
    for d in (d1, d2):
        assert d.status == Status.FAILED
        assert d.error == f"not run: parent step chain_step ({c.key}) failed: {c.error}"
    assert queue_read(check_consistency) == {"unreferenced": [], "no_ttl": [], "dangling": []}


def test_skip_policy_ends_the_rest_aborted_and_a_step_may_say_its_own(redis_db):
    jobs = chain(s("a", fail=True, retries=0), s("b"), s("c", on_failure="fail"), on_failure="skip").enqueue()
    run_jobs()
    a, b, c = (stored(job.key) for job in jobs)
    assert notes() == ["a attempt 1"]
    assert b.status == Status.ABORTED and b.error.startswith(f"skipped: parent step chain_step ({a.key}) failed: ")
    assert c.status == Status.FAILED and c.error.startswith(f"not run: parent step chain_step ({b.key}) aborted: ")


def test_a_parent_aborted_before_it_ran_ends_the_chain(redis_db):
    jobs = chain(s("a"), s("b")).enqueue()
    operations.abort_job("default", jobs[0].key, "tester")
    b = stored(jobs[1].key)
    assert b.status == Status.FAILED
    assert b.error == f"not run: parent step chain_step ({jobs[0].key}) aborted: Aborted from the dashboard by tester."
    run_jobs()
    assert notes() == []


def test_a_retried_parent_runs_its_child_once_it_completes(redis_db):
    jobs = chain(step("flaky", fail_times=1, retry_delay=0), s("after")).enqueue()
    run_jobs()
    assert stored(jobs[0].key).attempts == 2
    assert stored(jobs[1].key).result["parents"] == [{"attempt": 2}]
    assert notes() == ["flaky attempt 1", "flaky attempt 2", "after attempt 1"]


def test_steps_are_validated_as_an_enqueue_is():
    with pytest.raises(TaskNotFound):
        step("no_such_task")
    with pytest.raises(TaskArgumentError, match="nope"):
        step("chain_step", label="a", nope=1)
    with pytest.raises(TaskArgumentError, match="at least one"):
        chain()
    with pytest.raises(TaskArgumentError, match=r"wrap a task call as step\(task"):
        chain("chain_step")
    with pytest.raises(TaskArgumentError, match=r"'fail'.*'skip'"):
        chain(s("a"), on_failure="ignore")
    with pytest.raises(TaskArgumentError, match=r"'fail'.*'skip'"):
        s("a", on_failure="later")
    deep = s("a")
    for _ in range(3000):  # nested far past Python's recursion limit: a clear error, not a RecursionError
        deep = chain(deep)
    with pytest.raises(TaskArgumentError, match="nests chains and groups too deeply"):
        deep.enqueue()


def test_enqueue_on_commit_writes_nothing_on_rollback_and_the_whole_chain_once_on_commit(redis_db):
    flow = chain(s("a"), group(s("b1"), s("b2")), s("c"))
    with pytest.raises(RuntimeError), transaction.atomic():
        flow.enqueue_on_commit()
        raise RuntimeError("rolled back")
    assert job_keys() == [] and not OutboxEntry.objects.exists()
    with transaction.atomic():
        keys = flow.enqueue_on_commit()
        assert OutboxEntry.objects.count() == 1  # one row carries the whole chain
        assert job_keys() == []
    assert sorted(job_keys()) == sorted(keys) and not OutboxEntry.objects.exists()
    run_jobs()
    assert stored(keys[-1]).status == Status.COMPLETE
    assert [p["label"] for p in stored(keys[-1]).result["parents"]] == ["b1", "b2"]


def test_a_chain_delivered_twice_is_written_once(redis_db):
    carrier = chain_steps.envelope(chain(s("a"), s("b")).build()).job

    async def deliver_twice(queue):
        from tasks_app.enqueueing.connections import get_queue

        for _ in range(2):
            await chain_steps.send([Job(**{**carrier.to_dict(), "queue": None})])
        return await get_queue("default").count("queued")

    assert queue_read(deliver_twice) == 1
    run_jobs()
    assert notes() == ["a attempt 1", "b attempt 1"]


def test_aenqueue_writes_the_chain(redis_db):
    async def go():
        return await chain(s("a"), s("b")).aenqueue()

    jobs = asyncio.run(go())
    assert [job.status for job in jobs] == [Status.QUEUED, Status.NEW]
    run_jobs()
    assert stored(jobs[1].key).status == Status.COMPLETE


def test_a_capture_records_every_step_and_run_jobs_follows_the_chain():
    with capture_jobs() as captured:
        jobs = chain(s("a"), group(s("b1"), s("b2", fail=True, retries=0)), s("c")).enqueue()
        assert captured.tasks == ["chain_step"] * 4
        assert [job.status for job in captured.pending()] == [Status.QUEUED]  # only the first can run
        done = run_jobs()
    assert notes() == ["a attempt 1", "b1 attempt 1", "b2 attempt 1"]
    assert [job.status for job in jobs] == [Status.COMPLETE, Status.COMPLETE, Status.FAILED, Status.FAILED]
    assert jobs[3].error == f"not run: parent step chain_step ({jobs[2].key}) failed: ValueError: b2 broke"
    assert len(done) == 3
    with capture_jobs():
        flow = chain(s("x"), s("y")).enqueue()
        run_jobs()
    assert flow[1].result == {"label": "y", "parents": [{"label": "x", "parents": []}]}


def test_immediate_mode_runs_the_chain_at_once(immediate_jobs):
    jobs = group(s("a"), s("b")).then(s("c")).enqueue()
    assert [job.status for job in jobs] == [Status.COMPLETE] * 3
    assert [p["label"] for p in jobs[-1].result["parents"]] == ["a", "b"]


def test_the_job_page_links_a_step_to_its_parents_and_children(admin_client, redis_db):
    from django.urls import reverse

    a, b, c = chain(s("a"), s("b"), s("c")).enqueue()
    response = admin_client.get(reverse("admin:tasks_app_dashboard_job", args=["default", b.key]))
    assert response.status_code == 200
    assert response.context["row"]["status"] == "new"  # waiting for its parent: on no list
    page = response.text
    assert f'href="{reverse("admin:tasks_app_dashboard_job", args=["default", a.key])}"' in page
    assert f'href="{reverse("admin:tasks_app_dashboard_job", args=["default", c.key])}"' in page
    first = admin_client.get(reverse("admin:tasks_app_dashboard_job", args=["default", a.key])).text
    assert "none (a first step)" in first


def test_a_chain_on_commit_in_a_capture_is_captured_once_after_commit(django_capture_on_commit_callbacks):
    with capture_jobs() as captured, django_capture_on_commit_callbacks(execute=True):
        with transaction.atomic():
            keys = chain(s("a"), s("b")).enqueue_on_commit()
            assert len(captured) == 0
        assert [job.key for job in captured] == keys
        run_jobs()
    assert captured[1].job.result == {"label": "b", "parents": [{"label": "a", "parents": []}]}


def test_a_plain_job_pays_nothing_for_chains():
    from tasks_app.enqueueing.building import build_job

    plain = build_job("chain_step", {"label": "x"}).job
    assert plain.meta == {} and engine_chains.of(plain) is None
    queue = make_queue("default")
    assert engine_chains.args(queue, plain) == []  # no extra ARGV on its outcome's write


def test_steps_may_run_on_other_queues_of_the_same_redis(settings, redis_db):
    default = settings.SAQ["QUEUES"]["default"]
    settings.SAQ = {**settings.SAQ, "QUEUES": {**settings.SAQ["QUEUES"], "other": dict(default)}}
    jobs = chain(s("a"), s("b", queue="other"), s("c")).enqueue()
    run_jobs()  # a burst worker per queue
    assert stored(jobs[1].key, queue="other").status == Status.COMPLETE
    c = stored(jobs[2].key)
    assert c.result["parents"][0]["label"] == "b" and c.meta["chain"]["parents"] == [["other", jobs[1].key]]
    elsewhere = {**default, "URL": default["URL"].rsplit("/", 1)[0] + "/15"}
    settings.SAQ = {**settings.SAQ, "QUEUES": {**settings.SAQ["QUEUES"], "other": elsewhere}}
    with pytest.raises(TaskArgumentError, match="queues of one Redis"):
        chain(s("a"), s("b", queue="other")).enqueue()


def test_a_step_that_never_ran_is_not_retried_before_or_without_its_parents(redis_db):
    jobs = chain(s("a", fail=True, retries=0), s("b")).enqueue()
    run_jobs()
    a, b = (stored(job.key) for job in jobs)
    assert (a.status, b.status, b.attempts) == (Status.FAILED, Status.FAILED, 0)
    with pytest.raises(ActionRefused, match=r"is a chain step that never ran .*: enqueue the chain anew\."):
        operations.retry_job("default", b.key, "tester")
    # "retry every failed job": the parent goes back, its never-run child is left (it would run at once,
    # beside its parent, with no parent results)
    done = operations.act(operations.Selection(operations.RETRY, "default", as_of=operations.now_ms("default")), "t")
    assert (done.changed, done.found) == (1, 1)  # not counted as found, then "changed since"
    assert stored(b.key).status == Status.FAILED
    run_jobs()
    assert notes() == ["a attempt 1", "a attempt 2"]
