"""``python manage.py pausequeue QUEUE [QUEUE ...]`` (or ``--all``): its workers take no new jobs.

Running jobs finish; enqueueing goes on, and the jobs wait. ``resumequeue`` undoes it. The dashboard,
``runworker --check`` and ``/metrics`` show a paused queue as paused.
"""

from __future__ import annotations

import getpass
import socket

from django.core.management.base import BaseCommand, CommandError

from tasks_app import operations as ops
from tasks_app import redis_facts
from tasks_app.display import show_time
from tasks_app.management.queues import named_queues


def operator(command: str) -> str:
    """Who runs this command, for the queue's trail: the OS user and host."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (e.g. a container)
        user = "unknown user"
    return f"{user}@{socket.gethostname()} (manage.py {command})"


class QueueSwitch(BaseCommand):
    """Pause or resume the named queues (``action``: ops.PAUSE or ops.RESUME)."""

    action = ops.PAUSE

    def add_arguments(self, parser) -> None:
        parser.add_argument("queues", nargs="*", metavar="QUEUE", help="Queue name(s) from SAQ['QUEUES'].")
        parser.add_argument("--all", action="store_true", help="Every configured queue.")

    def handle(self, *args, **options) -> None:
        if options["all"] == bool(options["queues"]):
            every = ", ".join(named_queues(None))
            raise CommandError(f"Name the queue(s) to {self.action}, or pass --all (not both). Configured: {every}.")
        by = operator(f"{self.action}queue")
        for name in named_queues(options["queues"]):
            try:
                self.stdout.write(self.switch(name, by))
            except ops.REDIS_ERRORS as exc:
                unreachable = redis_facts.describe(name, exc)
                raise CommandError(f"{unreachable} Nothing more was changed.", returncode=2) from None

    def switch(self, name: str, by: str) -> str:
        already = ops.pause(name, by)
        if already is not None:
            since = f" since {show_time(already.at)}" if already.at else ""
            return f"Queue {name!r} was paused already, by {already.by}{since}."
        return f"Queue {name!r} is paused: its workers finish what they run and take nothing new."


class Command(QueueSwitch):
    help = "Pause queues: their workers take no new jobs until resumequeue. Enqueueing goes on."
