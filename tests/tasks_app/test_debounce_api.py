"""``debounce=`` through the public API: the calls, ``@task(debounce=...)``, the outbox, ``tasks_app.testing``
(which honours it without waiting), and a real worker on a Redis whose clock the test moves."""

import pytest
from django.db import transaction
from saq.job import Status

from tasks_app import aenqueue, enqueue, enqueue_many, enqueue_on_commit, task
from tasks_app.engine import debounce
from tasks_app.exceptions import TaskArgumentError
from tasks_app.registry import TaskSpec, registry
from tasks_app.testing import capture_jobs, run_jobs
from tests.queue_state import stored
from tests.sampleapp.models import Note

pytestmark = pytest.mark.django_db

KEY = "note:debounced"


def notes() -> list[str]:
    return list(Note.objects.order_by("pk").values_list("text", flat=True))


def test_a_captured_burst_is_one_job_with_the_last_arguments_and_runs_without_waiting():
    with capture_jobs() as captured:
        returned = [enqueue("add_note", key=KEY, debounce=60, text=f"save {n}") for n in range(10)]
        assert [(job.task, job.kwargs) for job in captured] == [("add_note", {"text": "save 9"})]
        assert returned[-1] is captured[0].job
        done = run_jobs()
    assert len(done) == 1 and notes() == ["save 9"]


def test_a_captured_debounced_job_runs_after_what_was_enqueued_meanwhile():
    with capture_jobs() as captured:
        enqueue("add_note", key=KEY, debounce=1, text="first")
        enqueue("add_note", text="other")
        enqueue("add_note", key=KEY, debounce=1, text="last")
        assert [job.kwargs["text"] for job in captured] == ["last", "other"]
        run_jobs()
    assert notes() == ["other", "last"]


resaves: list[int] = []


async def resave(ctx, n: int) -> None:
    resaves.append(n)
    if n == 1:  # saves made while the job runs: the last one runs once more, after it
        for again in (2, 3, 4):
            await aenqueue("resave", key=KEY, debounce=1, n=again)


@pytest.fixture
def resave_task():
    resaves.clear()
    registry.register(TaskSpec(name="resave", func=resave))
    yield
    registry.unregister("resave")


def test_calls_made_while_the_captured_job_runs_run_once_after_it(resave_task):
    with capture_jobs() as captured:
        enqueue("resave", key=KEY, debounce=1, n=1)
        run_jobs()
    assert resaves == [1, 4]
    assert [(job.kwargs, job.status) for job in captured] == [({"n": 1}, "complete"), ({"n": 4}, "complete")]


def test_enqueue_on_commit_keeps_the_debounce_through_the_outbox(django_capture_on_commit_callbacks):
    with capture_jobs() as captured, django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        for n in range(3):
            enqueue_on_commit("add_note", key=KEY, debounce=0.5, debounce_max=2, text=f"save {n}")
    assert [job.kwargs for job in captured] == [{"text": "save 2"}]
    assert debounce.of(captured[0].job) == [0.5, 2.0]


def test_the_bulk_calls_take_debounce():
    with capture_jobs() as captured:
        enqueue_many("add_note", [{"text": "a"}, {"text": "b"}], keys=[KEY, KEY], debounce=1)
    assert [job.kwargs for job in captured] == [{"text": "b"}]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"debounce": 1}, r"add_note\(\): debounce= needs key="),
        ({"key": KEY, "debounce": 0}, r"debounce=0 must be a number of seconds above 0"),
        ({"key": KEY, "debounce": True}, r"debounce=True must be a number of seconds"),
        ({"key": KEY, "debounce": 5, "debounce_max": 2}, r"debounce_max=2 must be at least debounce=5"),
        ({"key": KEY, "debounce_max": 2}, r"debounce_max=2 needs debounce="),
        ({"key": KEY, "debounce": 1, "delay": 5}, r"pass debounce= or delay=/at=, not both"),
    ],
)
def test_bad_debounce_arguments_are_one_line_errors_naming_the_argument(options, message):
    with capture_jobs(), pytest.raises(TaskArgumentError, match=message):
        enqueue("add_note", text="x", **options)


def test_a_tasks_debounce_is_the_default_for_its_calls_with_a_key():
    with pytest.raises(TypeError, match=r"@task: debounce=-1 must be a number of seconds above 0"):
        task(debounce=-1)(lambda ctx: None)

    @task(name="debounced_by_default", debounce=2)
    def debounced_by_default(ctx, text: str) -> None:
        return None

    try:
        with capture_jobs() as captured:
            enqueue("debounced_by_default", key=KEY, text="a")
            enqueue("debounced_by_default", key=KEY, text="b")
            enqueue("debounced_by_default", text="no key: not debounced")
            enqueue("debounced_by_default", key="own", debounce=5, debounce_max=7, text="its own")
        assert [job.kwargs["text"] for job in captured] == ["b", "no key: not debounced", "its own"]
        assert [debounce.of(job.job) for job in captured] == [[2.0, 20.0], None, [5.0, 7.0]]
    finally:
        registry.unregister("debounced_by_default")


@pytest.mark.django_db(transaction=True)
def test_a_burst_through_redis_runs_once_on_a_real_worker_after_the_last_save(clocked_default):
    for n in range(10):
        job = enqueue("add_note", key=KEY, debounce=2, text=f"save {n}")
        clocked_default.shift(0.5)
    assert (stored(KEY).kwargs, stored(KEY).status) == ({"text": "save 9"}, Status.QUEUED)
    assert job.scheduled == pytest.approx(clocked_default.now() + 1.5, abs=1)
    clocked_default.shift(2)
    done = run_jobs()
    assert [(job.key, job.status) for job in done.jobs] == [(KEY, Status.COMPLETE)]
    assert notes() == ["save 9"]
