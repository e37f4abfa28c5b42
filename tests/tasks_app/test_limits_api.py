"""Rate limits and per-key concurrency through the public API, on real Redis and PostgreSQL: bad values
refused at decoration; each job carries its limiter keys, made from its arguments; ``run_jobs`` does not
wait for limits; the dashboard shows each limiter; a real worker SIGKILLed while holding a lease loses it
to the sweep, and no job is lost or runs beside another of its key."""

import json
import signal

import pytest
from django.urls import reverse

from tasks_app import enqueue, task
from tasks_app.engine import limits
from tasks_app.exceptions import LimitError, TasksAppError
from tasks_app.registry import registry
from tasks_app.testing import capture_jobs, run_jobs
from tests.queue_state import count, stored
from tests.sampleapp.models import Note

from .helpers import wait_until


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"rate_limit": "ten"}, r"rate_limit='ten' is not a rate: .* e\.g\. rate_limit=\"10/s\""),
        ({"rate_limit": "10/d"}, r"rate_limit='10/d' is not a rate"),
        ({"rate_limit": 10}, r"rate_limit=10 is not a rate"),
        ({"rate_limit": "0/s"}, r"rate_limit='0/s' is not a rate"),
        ({"rate_limit": "10/s", "rate_limit_key": "host:{hostname}"}, r"names 'hostname', which is not an argument"),
        ({"concurrency": 0}, r"concurrency=0 must be a whole number of jobs at once, from 1"),
        ({"concurrency": "1"}, r"concurrency='1' must be"),
        ({"concurrency": 1, "concurrency_key": "feed:{feed.id}"}, r"name arguments plainly"),
        ({"concurrency": 1, "concurrency_key": "feed {feed_id}"}, r"its text may hold letters, digits and"),
        ({"concurrency_key": "feed:{feed_id}"}, r"concurrency_key= needs concurrency="),
        ({"rate_limit_key": "host:{host}"}, r"rate_limit_key= needs rate_limit="),
    ],
)
def test_a_malformed_limit_is_refused_at_decoration_naming_the_fix(options, message):
    with pytest.raises(LimitError, match=message) as raised:

        @task(name="never_registered", **options)
        async def never(ctx, feed_id: int, host: str) -> None: ...

    assert isinstance(raised.value, TasksAppError)
    assert "never_registered" not in registry


def test_each_job_carries_its_limiter_keys_from_its_arguments_percent_encoded():
    spec = registry.get("crawl_feed")
    assert spec.limits.concurrency == 1 and spec.limits.rate is None
    with capture_jobs() as captured:
        enqueue("crawl_feed", feed_id=7, seconds=0, text="x")
        enqueue("fetch_from_host", host="ex ample.org;,", n=1)
    assert captured[0].job.meta["limits"] == ";feed:7,1"
    assert captured[1].job.meta["limits"] == "host:ex%20ample.org%3B%2C,20,1000;"
    assert limits.parsed(captured[1].job.meta["limits"])["rate"] == ("host:ex%20ample.org%3B%2C", 20, 1000)


def test_the_default_key_is_the_tasks_name_and_defaults_key_as_given():
    @task(name="limited_default", rate_limit="5/m", concurrency=2, concurrency_key="t:{tenant}")
    async def limited_default(ctx, tenant: str = "acme") -> None: ...

    try:
        assert limited_default.saq_task.limits.meta({}) == "task:limited_default,5,60000;t:acme,2"
    finally:
        registry.unregister("limited_default")


@pytest.mark.django_db
def test_run_jobs_runs_limited_captured_jobs_at_once_without_waiting():
    with capture_jobs():
        for n in range(50):
            enqueue("fetch_from_host", host="example.org", n=n)  # 20/s: 2.5 s of starts on a worker
        done = run_jobs()
    assert sorted(done.results.values()) == list(range(50))


@pytest.mark.django_db(transaction=True)
def test_the_queue_page_shows_each_limiter_its_use_and_its_waiting_jobs(admin_client, redis_db, settings):
    settings.SAQ = {**settings.SAQ, "QUEUES": {"default": {**settings.SAQ["QUEUES"]["default"], "CONCURRENCY": 1}}}
    for n in range(3):
        enqueue("crawl_feed", feed_id=1, seconds=0, text=f"feed 1 #{n}")
    from tasks_app.engine import attempts
    from tasks_app.enqueueing.connections import background, make_queue

    async def take_one():  # a worker that took one job and still runs it
        queue = make_queue("default")
        try:
            return await attempts.take(queue, "w1"), await attempts.take(queue, "w1")
        finally:
            await queue.disconnect()

    running, refused = background.run(take_one())
    assert running.kwargs["text"] == "feed 1 #0" and refused is None
    page = admin_client.get(reverse("admin:tasks_app_dashboard_queue", args=["default"]))
    (limiter,) = page.context["limiters"]
    assert (limiter.kind, limiter.key, limiter.limit, limiter.in_use) == ("concurrency", "feed:1", "1 at once", 1)
    assert limiter.waiting == 2  # both parked by the refused take, which tried every job behind the first
    assert count("queued") == 2
    assert '<td>feed:1</td><td>1 at once</td><td class="tq-num">1</td>' in page.text


def env_with(subprocess_env: dict, **saq) -> dict:
    return {**subprocess_env, "TEST_SAQ": json.dumps(saq)}


def note_texts() -> list[str]:
    return list(Note.objects.order_by("pk").values_list("text", flat=True))


@pytest.mark.django_db(transaction=True)
def test_a_sigkilled_worker_holding_a_lease_loses_it_to_the_sweep_and_no_job_is_lost(
    start_worker, subprocess_env, redis_db
):
    env = env_with(subprocess_env, DEFAULT_JOB_OPTIONS={"heartbeat": 2})
    doomed = start_worker(env=env)
    doomed.wait_for_output("SIGTERM/SIGINT for a clean stop")
    # first's first attempt runs until the kill, however slow this machine is to get there.
    first = enqueue("crawl_feed", feed_id=1, seconds=0.5, text="first", heartbeat=2, hang_first=True)
    # Taken before the next is enqueued: two idle slots woken at once may activate in either order.
    wait_until(lambda: "first started" in note_texts(), message="first to start")
    second = enqueue("crawl_feed", feed_id=1, seconds=0.2, text="second", heartbeat=2)
    enqueue("crawl_feed", feed_id=2, seconds=0.2, text="other", heartbeat=2)
    wait_until(lambda: {"first started", "other finished"} <= set(note_texts()), message="first and other to run")
    assert "second started" not in note_texts()  # feed 1's lease is first's
    held = stored(second.key)
    assert (held.status.value, held.attempts) == ("queued", 0)
    doomed.signal(signal.SIGKILL)
    doomed.wait(5)
    start_worker(env=env)
    # Until both outcomes are recorded (a task's last note comes before its worker's write).
    wait_until(
        lambda: {stored(first.key).status.value, stored(second.key).status.value} == {"complete"},
        timeout=30,
        message="both jobs of feed 1 to complete",
    )
    texts = [text for text in note_texts() if not text.startswith("other")]
    assert texts.count("first started") == 2 and texts.count("second started") == 1  # at least once, no more
    # After the kill, feed 1's jobs ran one at a time: each start followed by its own finish.
    after_kill = texts[1:]
    assert all(
        start.endswith("started") and finish == start.replace("started", "finished")
        for start, finish in zip(after_kill[::2], after_kill[1::2], strict=True)
    ), texts
    assert count("queued") == 0 and count("active") == 0  # (the site's cron run stays scheduled)
    assert redis_db.hlen("saq:limit:lease:feed:1") == 0  # the last finish gave the lease back
