"""``python manage.py resumequeue QUEUE [QUEUE ...]`` (or ``--all``): undo ``pausequeue``."""

from __future__ import annotations

from tasks_app import operations as ops

from .pausequeue import QueueSwitch


class Command(QueueSwitch):
    help = "Resume paused queues: their workers take jobs again."
    action = ops.RESUME

    def switch(self, name: str, by: str) -> str:
        if ops.resume(name, by):
            return f"Queue {name!r} is resumed: its workers take jobs again."
        return f"Queue {name!r} was not paused."
