"""Arguments of the wrong shape are clear errors, not surprises: a queue name given as a string, bulk
calls that are not dicts of keyword arguments."""

import asyncio
import re

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from saq.job import Status

from tasks_app import aenqueue_many, enqueue, enqueue_many, enqueue_many_on_commit, enqueue_on_commit
from tasks_app.enqueueing.building import MAX_KEY_LENGTH
from tasks_app.exceptions import TaskArgumentError
from tasks_app.models import OutboxEntry
from tasks_app.testing import capture_jobs, run_jobs
from tests.queue_state import count

pytestmark = pytest.mark.django_db(transaction=True)


# --- run_jobs(queues=...) -------------------------------------------------------------------------


def test_run_jobs_takes_one_queue_name_as_a_string(redis_db):
    job = enqueue("noop")
    done = run_jobs(queues="default")
    assert [(ended.key, ended.status) for ended in done.jobs] == [(job.key, Status.COMPLETE)]


def test_run_jobs_names_an_unknown_queue_whole(redis_db):
    with pytest.raises(ImproperlyConfigured, match="Unknown queue 'nope'"):
        run_jobs(queues="nope")


@pytest.mark.parametrize("queues", [5, [1], b"default"])
def test_run_jobs_refuses_what_is_not_queue_names(redis_db, queues):
    with pytest.raises(TypeError, match="queues= takes a queue name or a list of them"):
        run_jobs(queues=queues)


# --- enqueue_many and its twins: one dict of keyword arguments per job ----------------------------

BAD_CALLS = [
    ({"a": 1}, "calls must be a list of dicts of keyword arguments, one per job"),
    ("abc", "calls must be a list of dicts"),
    (None, "calls must be a list of dicts"),
    ([None], r"calls\[0\] is NoneType, not a dict of keyword arguments"),
    (["abc"], r"calls\[0\] is str, not a dict of keyword arguments"),
    ([{}, {}, ("a", 1)], r"calls\[2\] is tuple, not a dict of keyword arguments"),
]


def nothing_went_anywhere() -> bool:
    return count("incomplete") == 0 and not OutboxEntry.objects.exists()


@pytest.mark.parametrize(("calls", "message"), BAD_CALLS)
def test_enqueue_many_refuses_calls_that_are_not_dicts(redis_db, calls, message):
    with pytest.raises(TaskArgumentError, match=message):
        enqueue_many("noop", calls)
    assert nothing_went_anywhere()


@pytest.mark.parametrize(("calls", "message"), BAD_CALLS)
def test_aenqueue_many_refuses_calls_that_are_not_dicts(redis_db, calls, message):
    with pytest.raises(TaskArgumentError, match=message):
        asyncio.run(aenqueue_many("noop", calls))
    assert nothing_went_anywhere()


@pytest.mark.parametrize(("calls", "message"), BAD_CALLS)
def test_enqueue_many_on_commit_refuses_calls_that_are_not_dicts(redis_db, calls, message):
    with pytest.raises(TaskArgumentError, match=message), transaction.atomic():
        enqueue_many_on_commit("noop", calls)
    assert nothing_went_anywhere()


def test_a_capture_refuses_them_too(redis_db):
    with capture_jobs() as captured, pytest.raises(TaskArgumentError, match=r"calls\[0\] is NoneType"):
        enqueue_many("noop", [None])
    assert len(captured) == 0


def test_keys_as_one_string_is_refused(redis_db):
    with pytest.raises(TaskArgumentError, match="keys must be a list of job keys, one per call"):
        enqueue_many("noop", [{}, {}, {}], keys="abc")
    assert nothing_went_anywhere()


def test_empty_dicts_and_generators_are_fine(redis_db):
    jobs = enqueue_many("greet", ({"name": name} for name in "ab"))
    assert [job.kwargs for job in jobs] == [{"name": "a"}, {"name": "b"}]
    assert [job.kwargs for job in enqueue_many("noop", [{}])] == [None]


# --- argument values against the task's annotations ------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": 1}, "greet(): argument name must be str, got 1"),
        ({"name": "x", "times": "2"}, "argument times must be int, got '2'"),
        ({"name": "x", "loud": 1}, "argument loud must be bool, got 1"),
        ({"name": "x", "times": float("nan")}, "NaN or Infinity, which JSON has no way to store"),
        ({"name": "x", "times": [[[[]]]] * 2}, "argument times must be int"),
        ({"name": ["x"] * 2}, "argument name must be str"),
    ],
)
def test_values_that_do_not_fit_the_annotations_are_refused_before_redis(redis_db, kwargs, message):
    with pytest.raises(TaskArgumentError, match=message.replace("(", r"\(").replace(")", r"\)")):
        enqueue("greet", **kwargs)
    with pytest.raises(TaskArgumentError, match=message.replace("(", r"\(").replace(")", r"\)")):
        enqueue_many("greet", [kwargs])
    assert count("incomplete") == 0


def test_nesting_past_the_limit_is_refused_without_a_recursion_error(redis_db):
    deep: list = []
    for _ in range(5000):
        deep = [deep]
    with pytest.raises(TaskArgumentError, match="nest more than 32 levels deep"):
        enqueue("chain", text=deep)
    assert count("incomplete") == 0


def test_an_int_fits_a_float_parameter(redis_db):
    enqueue("sleep_then_note", seconds=1, text="x")  # int for float: JSON does not tell them apart
    assert count("incomplete") == 1


# --- a task given as neither a name nor a function; a key that is not a str ------------------------


@pytest.mark.parametrize("ref", [None, 5, 3.5, b"noop"])
def test_a_task_given_as_neither_a_name_nor_a_function_is_named_in_the_error(ref):
    with pytest.raises(TaskArgumentError, match=f"not {type(ref).__name__} "):
        enqueue(ref)


@pytest.mark.parametrize("key", [123, ["a"], b"abc"])
def test_a_job_key_must_be_a_str(redis_db, key):
    with pytest.raises(TaskArgumentError, match=re.escape(f"key={key!r} must be a str, not {type(key).__name__}")):
        enqueue("noop", key=key)
    with pytest.raises(TaskArgumentError, match="must be a str"):
        enqueue_many("noop", [{}], keys=[key])
    assert count("incomplete") == 0


def test_a_misspelt_argument_is_named_before_the_one_it_leaves_missing(redis_db):
    # Python's bind says "missing a required argument: 'name'" first, which hides the typo that caused it.
    with pytest.raises(TaskArgumentError) as caught:
        enqueue("greet", nam="x")
    assert str(caught.value).startswith("greet(): unexpected keyword argument 'nam' (did you mean 'name'?). It takes:")
    with pytest.raises(TaskArgumentError) as caught:
        enqueue("greet", name="x", colour="red")
    assert str(caught.value).startswith("greet(): unexpected keyword argument 'colour'. It takes:")
    assert count("incomplete") == 0


def test_an_empty_job_key_is_refused_it_would_name_no_job(redis_db):
    with pytest.raises(TaskArgumentError, match="key='' names no job: give a non-empty key, or none"):
        enqueue("noop", key="")
    assert count("incomplete") == 0


@pytest.mark.parametrize("key", ["line\nforged INFO line", "nul\x00", "tab\tkey", "del\x7f", "c1\x85", "ls\u2028"])
def test_a_job_key_with_a_control_character_is_refused_it_would_forge_log_lines(redis_db, key):
    with pytest.raises(TaskArgumentError, match="holds the control character"):
        enqueue("noop", key=key)
    with pytest.raises(TaskArgumentError, match="holds the control character"):
        enqueue_many("noop", [{}], keys=[key])
    assert count("incomplete") == 0


@pytest.mark.parametrize("key", ["a/b/../c", "x/../victim", "..", ".", "a/./b", "feeds/.."])
def test_a_job_key_with_a_dot_segment_is_refused_its_dashboard_link_would_open_another_job(redis_db, key):
    # A browser rewrites /jobs/default/x/../victim/ to /jobs/default/victim/: another job's page, or a 404.
    with pytest.raises(TaskArgumentError, match=re.escape("has a '.' or '..' between slashes")):
        enqueue("noop", key=key)
    with pytest.raises(TaskArgumentError, match=re.escape("has a '.' or '..' between slashes")):
        enqueue_many("noop", [{}], keys=[key])
    assert count("incomplete") == 0


@pytest.mark.parametrize("key", ["a..b", "v1.2/x", ".x/a", "feed:..", "a/.../b"])
def test_dots_that_are_not_a_whole_segment_are_fine_in_a_key(redis_db, key):
    assert enqueue("noop", key=key).key == key


@pytest.mark.django_db(transaction=True)
def test_a_job_key_longer_than_an_outbox_row_holds_is_refused_on_every_path(redis_db):
    # enqueue() took it; enqueue_on_commit() failed at the commit with a raw DataError (a 500 in a view).
    long = "k" * (MAX_KEY_LENGTH + 1)
    with pytest.raises(TaskArgumentError, match=f"is {MAX_KEY_LENGTH + 1} characters; at most {MAX_KEY_LENGTH}"):
        enqueue("noop", key=long)
    with pytest.raises(TaskArgumentError, match="at most"), transaction.atomic():
        enqueue_on_commit("noop", key=long)
    assert OutboxEntry.objects.count() == 0
    with transaction.atomic():
        enqueue_on_commit("noop", key="é" * MAX_KEY_LENGTH)  # characters, not bytes
    assert count("incomplete") == 1
