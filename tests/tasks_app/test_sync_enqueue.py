"""Sync enqueueing from the calling thread (``tasks_app/enqueueing/sync_client.py``): the same script and
guarantees as the async path, each thread on a connection of its own, through Redis restarts and a
lost script cache; and the signature check's fast path deciding as ``Signature.bind`` does."""

import inspect
import itertools
import threading

import pytest
import redis
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings
from saq.job import Status

from tasks_app import enqueue, enqueue_many
from tasks_app.exceptions import TaskArgumentError
from tasks_app.registry import TaskSpec
from tests.queue_state import count, listed, stored
from tests.redis_server import RedisServer

pytestmark = pytest.mark.django_db(transaction=True)


def redis_at(url: str):
    return override_settings(SAQ={**settings.SAQ, "QUEUES": {"default": {"URL": url}}})


def test_threads_enqueueing_at_once_each_get_their_own_job(redis_db):
    got: dict[str, list] = {}

    def enqueue_some(name: str) -> None:
        got[name] = [enqueue("greet", name=f"{name}-{i}", key=f"{name}-{i}") for i in range(50)]

    threads = [threading.Thread(target=enqueue_some, args=(f"t{n}",)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for name, jobs in got.items():
        assert [job.key for job in jobs] == [f"{name}-{i}" for i in range(50)]
        assert [job.kwargs["name"] for job in jobs] == [f"{name}-{i}" for i in range(50)]
    assert count("queued") == 400


def test_a_pending_key_returns_the_pending_job_as_stored(redis_db):
    first = enqueue("greet", name="ada", key="once")
    again = enqueue("greet", name="bob", key="once")
    assert again.key == "once" and again.kwargs == {"name": "ada"} and again.queued == first.queued
    assert count("queued") == 1
    many = enqueue_many("greet", [{"name": "cy"}, {"name": "di"}], keys=["once", "new"])
    assert [job.kwargs["name"] for job in many] == ["ada", "di"] and count("queued") == 2


def test_the_job_is_stored_as_the_async_path_stores_it(redis_db):
    job = enqueue("greet", name="ada", key="k1", timeout=9, retries=0, delay=60)
    record = stored("k1")
    assert record.status == Status.QUEUED and record.timeout == 9 and record.retries == 1
    assert record.scheduled == job.scheduled > 0 and not listed("k1", "queued")  # scheduled for later


def test_a_lost_script_cache_is_refilled(redis_db):
    enqueue("greet", name="before")
    redis_db.script_flush()
    assert enqueue("greet", name="after", key="after").status == Status.QUEUED
    redis_db.script_flush()
    assert len(enqueue_many("greet", [{"name": "a"}, {"name": "b"}])) == 2
    assert listed("after", "queued") and count("queued") == 4


def test_many_chunks_go_in_order_and_one_bad_job_fails_the_call_after_the_others_went(redis_db):
    jobs = enqueue_many("greet", [{"name": f"n{i}"} for i in range(1203)], keys=[f"k{i}" for i in range(1203)])
    assert [job.key for job in jobs] == [f"k{i}" for i in range(1203)]
    assert redis_db.lrange("saq:default:queued", 0, -1) == [f"saq:job:default:k{i}".encode() for i in range(1203)]
    redis_db.flushdb()
    redis_db.rpush("saq:job:default:k700", "not a job")  # a script reading it fails: WRONGTYPE
    redis_db.script_flush()  # and the script cache is empty: loaded once, the jobs sent again
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        enqueue_many("greet", [{"name": f"n{i}"} for i in range(1203)], keys=[f"k{i}" for i in range(1203)])
    assert count("queued") == 1202 and not listed("k700", "queued")


def test_a_redis_restart_between_calls_is_survived(tmp_path):
    server = RedisServer(tmp_path, persistent=False).start()
    try:
        with redis_at(server.url):
            enqueue("greet", name="before")
            server.stop()
            server.start()  # the thread's connection is dead now: it is reopened once
            assert enqueue("greet", name="after").status == Status.QUEUED
            assert server.client().llen("saq:default:queued") == 1
    finally:
        server.stop()


def test_an_unreachable_redis_raises_at_once_and_the_next_call_tries_again(tmp_path):
    server = RedisServer(tmp_path, persistent=False)
    with redis_at(server.url):
        with pytest.raises(redis.ConnectionError):
            enqueue("greet", name="nobody home")
        server.start()
        try:
            assert enqueue("greet", name="home").status == Status.QUEUED
        finally:
            server.stop()


def test_validation_still_comes_first(redis_db):
    with pytest.raises(ImproperlyConfigured, match="Unknown queue 'nope'"):
        enqueue("greet", name="ada", queue="nope")
    with pytest.raises(TaskArgumentError, match="unexpected keyword argument"):
        enqueue("greet", name="ada", colour="blue")
    with pytest.raises(TaskArgumentError, match="Unknown job option"):
        enqueue_many("greet", [{"name": "ada"}], colour="blue")
    assert redis_db.dbsize() == 0


def test_a_new_queue_setting_is_used_at_once(redis_db, tmp_path):
    server = RedisServer(tmp_path, persistent=False).start()
    try:
        with override_settings(SAQ={**settings.SAQ, "QUEUES": {**settings.SAQ["QUEUES"], "other": server.url}}):
            enqueue("greet", name="elsewhere", queue="other")
        assert server.client().llen("saq:other:queued") == 1
        with pytest.raises(ImproperlyConfigured):
            enqueue("greet", name="gone", queue="other")  # the setting is back as it was
    finally:
        server.stop()


# Signatures of every shape; the fast path must accept exactly what Signature.bind accepts.
def f_plain(ctx, a, b=1): ...
def f_kwonly(ctx, *, a, b=1): ...
def f_varkw(ctx, a, **rest): ...
def f_varargs(ctx, *args, a=1): ...
def f_posonly_ctx(ctx, /, a, **rest): ...
def f_posonly_after(ctx, a, /, b=1): ...
def f_no_ctx(): ...
def f_ctx_only(ctx): ...


@pytest.mark.parametrize(
    "func", [f_plain, f_kwonly, f_varkw, f_varargs, f_posonly_ctx, f_posonly_after, f_no_ctx, f_ctx_only]
)
def test_the_signature_check_decides_as_bind_does(func):
    spec = TaskSpec(name=func.__name__, func=func)
    names = ["ctx", "a", "b", "rest", "args", "other"]
    for size in range(4):
        for chosen in itertools.combinations(names, size):
            kwargs = dict.fromkeys(chosen, 1)
            try:
                inspect.signature(func).bind(None, **kwargs)
                binds = True
            except TypeError:
                binds = False
            if spec._binds(kwargs):
                assert binds, (func.__name__, kwargs)
            try:
                spec.validate_kwargs(kwargs)
                valid = True
            except TaskArgumentError:
                valid = False
            assert valid == binds, (func.__name__, kwargs)


def test_sync_enqueueing_behind_sentinel_waits_for_replicas_once_per_call(tmp_path):
    from tasks_app.exceptions import ReplicasNotConfirmed
    from tests.redis_topology import SentinelTopology

    with SentinelTopology(tmp_path, replicas=1) as topology:
        primary = topology.client(topology.primary_port())
        with redis_at(topology.url(wait_replicas=1, wait_timeout=2000)):
            assert enqueue("greet", name="one").status == Status.QUEUED  # (the script is loaded now)
            primary.config_resetstat()
            jobs = enqueue_many("greet", [{"name": f"n{i}"} for i in range(1203)])  # three chunks
            assert len(jobs) == 1203 and primary.llen("saq:default:queued") == 1204
            assert primary.info("commandstats")["cmdstat_wait"]["calls"] == 1  # one WAIT, after the writes
        with redis_at(topology.url(wait_replicas=2, wait_timeout=100)), pytest.raises(ReplicasNotConfirmed):
            enqueue("greet", name="wants two replicas")  # there is one
