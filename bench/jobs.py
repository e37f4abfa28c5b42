"""The benchmark's jobs, shared by runworker and the bare asyncio loop.

They use the test suite's Note model, which nothing indexes for search, so each
job is exactly one read and one write.
"""

from tests.sampleapp.models import Note


async def bench_noop(ctx) -> None:
    return None


async def bench_orm_read_write(ctx, seed_id: int) -> int:
    """One async ORM read and one write."""
    seed = await Note.objects.aget(pk=seed_id)
    note = await Note.objects.acreate(text=f"{seed.text} copy")
    return note.pk


# --- bench/soak.py: every execution is recorded, in a Redis the soak does not restart ---------------

_executions = None


async def _record(ctx) -> None:
    """Append "pid started_ms" to this job's execution list (SOAK_RECORD_URL), before doing anything."""
    global _executions
    import os

    from redis.asyncio import from_url

    if _executions is None:
        _executions = from_url(os.environ["SOAK_RECORD_URL"])
    job = ctx["job"]
    await _executions.rpush(f"exec:{job.key}", f"{os.getpid()} {job.started}")


async def soak_noop(ctx) -> None:
    await _record(ctx)


async def soak_sleep(ctx, seconds: float = 0.05) -> None:
    import asyncio

    await _record(ctx)
    await asyncio.sleep(seconds)


async def soak_flaky(ctx) -> str:
    """Fails its first attempt, then succeeds."""
    await _record(ctx)
    if ctx["job"].attempts == 1:
        raise RuntimeError("soak: failing the first attempt on purpose")
    return "ok"


async def soak_fail(ctx) -> None:
    await _record(ctx)
    raise RuntimeError("soak: failing every attempt on purpose")


async def soak_long(ctx, seconds: float = 60) -> None:
    """Runs long: it times out (timeout=1) or is aborted by the soak's second client."""
    import asyncio

    await _record(ctx)
    await asyncio.sleep(seconds)


async def bench_sleep(ctx, seconds: float = 0.02) -> None:
    """An I/O-bound job: waits ``seconds`` without using the CPU."""
    import asyncio

    await asyncio.sleep(seconds)
