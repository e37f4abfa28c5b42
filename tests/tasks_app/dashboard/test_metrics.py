"""/metrics: Prometheus series from real workers and a real Redis and PostgreSQL, read with prometheus_client's
own parsers, authenticated like stats.json."""

import asyncio
from datetime import timedelta

import pytest
from django.conf import settings
from django.db.models.functions import Now
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import from_url as redis_from_url
from redis.exceptions import ConnectionError as RedisConnectionError
from saq.job import Job

from tasks_app import enqueue
from tasks_app.engine import pausing
from tasks_app.engine.queue import AtomicRedisQueue
from tasks_app.enqueueing.connections import make_queue
from tasks_app.metrics.recording import OTHER_TASK, AttemptRecorder
from tasks_app.models import OutboxEntry

from ..helpers import manage

pytestmark = pytest.mark.django_db(transaction=True)

METRICS = reverse("admin:tasks_app_dashboard_metrics")
TOKEN = "m3trics-token"


def with_token(token=TOKEN):
    return override_settings(SAQ={**settings.SAQ, "API_TOKEN": token})


def scrape(client, **headers) -> dict:
    """name -> {frozenset(labels.items()): value}, every sample of a scrape, as Prometheus's parser reads it."""
    with with_token():
        response = client.get(METRICS, headers={"Authorization": f"Bearer {TOKEN}", **headers})
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    samples: dict = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[frozenset(sample.labels.items())] = sample.value
    return samples


def value(samples, name, **labels):
    return samples[name][frozenset(labels.items())]


def test_attempts_durations_depth_workers_and_outbox_after_real_work(client, work):
    enqueue("dash.add", a=1, b=2)
    enqueue("dash.add", a=2, b=3)
    enqueue("dash.fail")
    work()
    enqueue("dash.add", a=3, b=4)  # still queued at the scrape
    enqueue("dash.add", a=3, b=4, delay=3600)  # scheduled

    samples = scrape(client)

    attempts = "tasks_app_job_attempts_total"
    assert value(samples, attempts, queue="default", task="dash.add", outcome="complete") == 2
    assert value(samples, attempts, queue="default", task="dash.fail", outcome="failed") == 1
    assert value(samples, "tasks_app_job_duration_seconds_count", queue="default", task="dash.add") == 2
    buckets = {
        dict(labels)["le"]: count
        for labels, count in samples["tasks_app_job_duration_seconds_bucket"].items()
        if dict(labels)["task"] == "dash.add"
    }
    assert list(buckets)[-3:] == ["600.0", "1800.0", "+Inf"] and len(buckets) == 18  # every bucket, each task
    assert list(buckets.values()) == sorted(buckets.values()) and buckets["+Inf"] == 2  # cumulative
    assert 0 < value(samples, "tasks_app_job_duration_seconds_sum", queue="default", task="dash.add") < 5
    assert value(samples, "tasks_app_queue_jobs", queue="default", status="queued") == 1
    assert value(samples, "tasks_app_queue_jobs", queue="default", status="scheduled") == 1
    assert value(samples, "tasks_app_queue_jobs", queue="default", status="active") == 0
    assert value(samples, "tasks_app_workers", queue="default") == 0  # the burst worker has gone
    assert value(samples, "tasks_app_queue_paused", queue="default") == 0
    assert value(samples, "tasks_app_queue_up", queue="default") == 1
    assert value(samples, "tasks_app_outbox_entries", database="default") == 0
    assert value(samples, "tasks_app_outbox_up", database="default") == 1

    work()  # counters only grow: the next worker adds to them
    assert value(scrape(client), attempts, queue="default", task="dash.add", outcome="complete") == 3


def test_a_retry_counts_each_attempt(client, work):
    enqueue("dash.flaky", retries=1, retry_delay=0)
    work()
    samples = scrape(client)
    outcomes = {
        dict(labels)["outcome"]: count
        for labels, count in samples["tasks_app_job_attempts_total"].items()
        if dict(labels)["task"] == "dash.flaky"
    }
    assert outcomes == {"retrying": 1, "complete": 1}


def test_live_workers_and_a_paused_queue(client, worker_in_thread):
    asyncio.run(_pause("default"))
    samples = scrape(client)
    assert value(samples, "tasks_app_workers", queue="default") == 1
    assert value(samples, "tasks_app_queue_paused", queue="default") == 1


async def _pause(name):
    queue = make_queue(name)
    try:
        await pausing.pause(queue, "test")
    finally:
        await queue.disconnect()


def test_the_outbox_backlog_and_its_age(client):
    # Written 90 s ago on the database's clock, which ``created`` and the age are read on.
    OutboxEntry.objects.create(
        job_key="a", queue="default", payload={"function": "dash.add"}, created=Now() - timedelta(seconds=90)
    )
    OutboxEntry.objects.create(job_key="b", queue="default", payload={"function": "dash.add"})
    OutboxEntry.objects.create(  # one the drain set aside: it waits too, and is also counted apart
        job_key="c", queue="old-queue", payload={"function": "dash.add"}, attempts=1, retry_at=timezone.now()
    )
    samples = scrape(client)
    assert value(samples, "tasks_app_outbox_entries", database="default") == 3
    assert value(samples, "tasks_app_outbox_set_aside", database="default") == 1
    assert 90 <= value(samples, "tasks_app_outbox_oldest_age_seconds", database="default") < 120


def test_every_child_of_workers_n_is_counted(client, subprocess_env):
    for n in range(12):
        enqueue("noop", key=f"noop-{n}")
    result = manage("runworker", "--workers", "2", "--burst", "--no-reload", "--skip-checks", env=subprocess_env)
    assert result.returncode == 0, result.stdout + result.stderr
    samples = scrape(client)
    assert value(samples, "tasks_app_job_attempts_total", queue="default", task="noop", outcome="complete") == 12


def test_openmetrics_when_asked(client):
    enqueue("dash.add", a=1, b=2)
    with with_token():
        response = client.get(
            METRICS, headers={"Authorization": f"Bearer {TOKEN}", "Accept": "application/openmetrics-text"}
        )
    assert response["Content-Type"].startswith("application/openmetrics-text")
    families = {family.name: family for family in parse_openmetrics(response.content.decode())}
    assert families["tasks_app_job_attempts"].type == "counter"
    assert families["tasks_app_job_duration_seconds"].type == "histogram"
    (queued,) = [s for s in families["tasks_app_queue_jobs"].samples if s.labels["status"] == "queued"]
    assert queued.value == 1


def test_authenticated_like_stats_json(client, viewer, staff_without_permission):
    disabled = client.get(METRICS)  # no token configured: disabled
    assert disabled.status_code == 404
    assert disabled.content.decode() == (
        'The metrics endpoint is disabled: set SAQ["API_TOKEN"] (set from the environment variable SAQ_API_TOKEN) '
        "to a long random string.\n"
    )
    with with_token():
        missing = client.get(METRICS)
        wrong = client.get(METRICS, headers={"Authorization": "Bearer m3trics-tokem"})
        in_url = client.get(f"{METRICS}/{TOKEN}/")
        in_header = client.get(METRICS, headers={"Authorization": f"Bearer {TOKEN}"})
        posted = client.post(METRICS, headers={"Authorization": f"Bearer {TOKEN}"})
    assert missing.status_code == 401 and missing["WWW-Authenticate"].startswith("Bearer")
    assert wrong.status_code == 403 and wrong.content == b"Invalid API token.\n"
    assert b"tasks_app" not in missing.content + wrong.content
    assert in_url.status_code == 400  # only the Authorization header carries the token
    assert in_header.status_code == 200 and b"tasks_app_queue_up" in in_header.content
    assert posted.status_code == 405
    client.force_login(viewer)
    assert client.get(METRICS).status_code == 200
    client.force_login(staff_without_permission)
    assert client.get(METRICS).status_code == 404


def test_a_queue_whose_redis_is_down_is_up_0_and_the_rest_is_still_served(client, closed_port):
    saq = {
        **settings.SAQ,
        "QUEUES": {**settings.SAQ["QUEUES"], "emails": {"URL": f"redis://127.0.0.1:{closed_port}/0"}},
    }
    with override_settings(SAQ=saq):
        samples = scrape(client)
    assert value(samples, "tasks_app_queue_up", queue="emails") == 0
    assert value(samples, "tasks_app_queue_up", queue="default") == 1
    assert frozenset({("queue", "emails"), ("status", "queued")}) not in samples["tasks_app_queue_jobs"]
    assert value(samples, "tasks_app_outbox_entries", database="default") == 0


def test_counts_survive_a_failed_flush_and_unknown_tasks_get_one_label(closed_port, redis_client):
    async def go():
        down = AtomicRedisQueue(redis_from_url(f"redis://127.0.0.1:{closed_port}/0"), name="default")
        recorder = AttemptRecorder(down, ["dash.add"])
        recorder.observe(Job(function="dash.add"), "complete", 0.02)
        recorder.observe(Job(function="made-up {injected}"), "failed", 0.5)
        with pytest.raises(RedisConnectionError):
            await recorder.flush()
        up = make_queue("default")
        recorder.queue = up  # Redis is back
        try:
            await recorder.flush()
            return await up.redis.hgetall(up.namespace("metrics"))
        finally:
            await up.disconnect()
            await down.redis.aclose()

    stored = {key.decode(): value.decode() for key, value in asyncio.run(go()).items()}
    assert stored['["attempts", "dash.add", "complete"]'] == "1"
    assert stored[f'["attempts", "{OTHER_TASK}", "failed"]'] == "1"
    assert stored['["duration", "dash.add", "0.025"]'] == "1"
    assert float(stored[f'["duration_sum", "{OTHER_TASK}"]']) == 0.5
    assert not any("made-up" in key for key in stored)
