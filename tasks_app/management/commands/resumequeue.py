"""``python manage.py resumequeue QUEUE [QUEUE ...]`` (or ``--all``): undo ``pausequeue``."""

from __future__ import annotations

from tasks_app.dashboard import bulk

from .pausequeue import QueueSwitch


class Command(QueueSwitch):
    help = "Resume paused queues: their workers take jobs again."
    action = bulk.RESUME

    async def _one(self, name: str, by: str) -> str:
        if await bulk.resume(name, by):
            return f"Queue {name!r} is resumed: its workers take jobs again."
        return f"Queue {name!r} was not paused."
