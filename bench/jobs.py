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
