"""Tasks the tasks_app tests run through a real worker."""

import asyncio
import os
import threading
import time
from datetime import UTC, datetime

from django.db import connection

from tasks_app import aenqueue, task

from .models import Note


@task
async def add_note(ctx, text: str) -> dict:
    note = await Note.objects.acreate(text=text)
    fetched = await Note.objects.aget(pk=note.pk)
    return {"id": fetched.pk, "count": await Note.objects.acount()}


@task
def add_note_sync(ctx, text: str) -> dict:
    note = Note.objects.create(text=text, thread=threading.current_thread().name)
    return {"id": note.pk, "thread": note.thread}


@task(retries=3, retry_delay=0.2, retry_backoff=1)
async def flaky(ctx, fail_times: int) -> dict:
    attempt = ctx["job"].attempts
    await Note.objects.acreate(text=f"flaky attempt {attempt}")
    if attempt <= fail_times:
        raise RuntimeError(f"failing on purpose, attempt {attempt}")
    return {"attempt": attempt}


@task(timeout=1, retries=0)
async def too_slow(ctx, seconds: float = 5) -> None:
    await asyncio.sleep(seconds)


@task(retries=0)
async def sleep_then_note(ctx, seconds: float, text: str) -> str:
    await Note.objects.acreate(text=f"{text} started")
    await asyncio.sleep(seconds)
    await Note.objects.acreate(text=f"{text} finished")
    return text


@task(retries=0)
def sync_sleep_then_note(ctx, seconds: float, text: str) -> str:
    Note.objects.create(text=f"{text} started")
    time.sleep(seconds)
    Note.objects.create(text=f"{text} finished")
    return text


@task(timeout=1, retries=2, retry_delay=0)
def sync_overrun(ctx, seconds: float) -> str:
    """Runs past its timeout in a thread, which cannot be stopped: notes when each attempt starts and ends."""
    attempt = ctx["job"].attempts
    Note.objects.create(text=f"overrun {attempt} started")
    time.sleep(seconds)
    Note.objects.create(text=f"overrun {attempt} finished")
    return "done"


@task
async def count_notes(ctx) -> int:
    return await Note.objects.acount()


@task
def backend_pid(ctx) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


@task
async def noop(ctx) -> None:
    return None


@task(retries=0)
async def boom(ctx) -> None:
    raise ValueError("boom")


@task
async def chain(ctx, text: str) -> str:
    job = await aenqueue("add_note", text=text)
    return job.key


@task
async def greet(ctx, name: str, times: int = 1, loud: bool = False) -> str:
    greeting = " ".join([f"hello {name}"] * times)
    return greeting.upper() if loud else greeting


@task
async def long_job(ctx, seconds: float, text: str) -> str:
    """Like sleep_then_note, but with the default retries, so a crash re-runs it."""
    return await sleep_then_note(ctx, seconds, text)


@task
async def write_marker(ctx, path: str) -> str:
    from pathlib import Path

    await asyncio.to_thread(Path(path).write_text, "done")
    return path


@task
async def read_context(ctx) -> str:
    return ctx.get("greeting", "")


@task(retries=2)
async def unstorable_result(ctx) -> set:
    """Returns what JSON cannot store."""
    return {1, 2}


@task(retries=2)
async def unstorable_meta(ctx, fail: bool = False) -> str:
    """Leaves in its job's meta what JSON cannot store (a datetime), beside what it can."""
    ctx["job"].meta.update(finished_at=datetime.now(UTC), note="kept")
    if fail:
        raise RuntimeError("and then fails, with retries left")
    return "ok"


@task(retries=2)
async def nan_result(ctx) -> float:
    """Returns what JSON has no way to store."""
    return float("nan")


@task
async def deeply_nested_result(ctx) -> list:
    """A result nested deeper than JSON encoding can recurse."""
    result: list = []
    for _ in range(5000):
        result = [result]
    return result


@task
async def event_loop_kind(ctx) -> str:
    """The module of the event loop the worker runs jobs on."""
    return type(asyncio.get_running_loop()).__module__.split(".")[0]


# --- progress and the final failure (tests/tasks_app/test_progress.py) --------------------------


def record_final_failure(job) -> None:
    """An ``on_final_failure`` hook: one Note per call, so a test can count the calls."""
    Note.objects.create(text=f"final failure {job.key} {job.status.value} attempts={job.attempts}"[:200])


@task(retries=1, retry_delay=0, on_final_failure="tests.sampleapp.tasks.record_final_failure")
async def fails_for_good(ctx) -> None:
    await Note.objects.acreate(text=f"fails_for_good attempt {ctx['job'].attempts}")
    raise RuntimeError("failing on purpose")


@task(retries=0, on_final_failure=record_final_failure)
async def hangs_until_killed(ctx, text: str) -> None:
    await Note.objects.acreate(text=f"{text} started")
    await asyncio.sleep(60)


@task(retries=0)
async def reports_progress(ctx, steps: int, hold: float = 0.0) -> list:
    """Reports each step; returns what each report returned (written or refused)."""
    from tasks_app import areport_progress

    written = []
    for done in range(1, steps + 1):
        written.append(await areport_progress(ctx, done / steps / 2, f"step {done} of {steps}"))
    await Note.objects.acreate(text="reports_progress reported")
    await asyncio.sleep(hold)
    return written


@task(retries=0)
def reports_progress_sync(ctx, fraction: float, message: str) -> bool:
    from tasks_app import report_progress

    return report_progress(ctx, fraction, message)


@task(retries=0)
async def fails_after_progress(ctx) -> None:
    from tasks_app import areport_progress

    await areport_progress(ctx, 0.3, "30 %")
    raise RuntimeError("failing after progress")


@task
async def traced_child(ctx) -> None:
    from opentelemetry import trace

    with trace.get_tracer("sampleapp").start_as_current_span("inside the task"):
        pass


@task(retries=2, concurrency=1, concurrency_key="feed:{feed_id}")
async def crawl_feed(ctx, feed_id: int, seconds: float, text: str, hang_first: bool = False) -> str:
    """At most one per feed at a time, across every worker (tasks_app/engine/limits.py). With ``hang_first``,
    its first attempt runs until its worker is killed."""
    await Note.objects.acreate(text=f"{text} started")
    await asyncio.sleep(3600 if hang_first and ctx["job"].attempts == 1 else seconds)
    await Note.objects.acreate(text=f"{text} finished")
    return text


@task(rate_limit="20/s", rate_limit_key="host:{host}")
async def fetch_from_host(ctx, host: str, n: int) -> int:
    """At most 20 starts per second per host, across every worker."""
    return n


@task(retries=2, retry_delay=0)
async def chain_step(ctx, label: str, fail: bool = False, hang_first: bool = False) -> dict:
    """A step of a chain: notes its run (label, attempt); fails when asked; with ``hang_first``, its first
    attempt hangs (so a test can kill its worker while it runs). Returns its label and its parents' results."""
    job = ctx["job"]
    await Note.objects.acreate(text=f"{label} attempt {job.attempts}")
    if hang_first and job.attempts == 1:
        await asyncio.sleep(3600)
    if fail:
        raise ValueError(f"{label} broke")
    return {"label": label, "parents": ctx.get("parent_results")}


@task(retries=0)
async def raises_system_exit(ctx) -> None:
    """A library that calls sys.exit() inside a job."""
    raise SystemExit(3)


@task(retries=0)
def raises_keyboard_interrupt(ctx) -> None:
    raise KeyboardInterrupt("from the task")


@task(retries=0)
async def awaits_a_cancelled_task(ctx) -> None:
    """The task's own code meets CancelledError: it awaits a helper that something else cancelled."""
    helper = asyncio.create_task(asyncio.sleep(10))
    await asyncio.sleep(0)
    helper.cancel()
    await helper


@task(retries=0)
def bad_query(ctx) -> None:
    """A query PostgreSQL refuses, the database answering: an OperationalError that is no outage."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SET statement_timeout = 1; SELECT pg_sleep(1)")


@task(retries=0)
def sync_until_file(ctx, path: str, text: str) -> str:
    """Runs (in a thread) until ``path`` exists: a test's switch, so that it ends when the test says."""
    Note.objects.create(text=f"{text} started")
    while not os.path.exists(path):
        time.sleep(0.02)
    Note.objects.create(text=f"{text} finished")
    return text
