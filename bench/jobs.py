"""The benchmark's jobs, shared by runworker, the bare SAQ worker and the bare asyncio loop."""

from django.utils import timezone

from pydotorg.events.models import Event


async def noop(ctx) -> None:
    return None


async def orm_read_write(ctx, seed_id: int) -> int:
    """One async ORM read and one write."""
    seed = await Event.objects.aget(pk=seed_id)
    event = await Event.objects.acreate(title=f"{seed.title} copy", starts_at=timezone.now())
    return event.pk
