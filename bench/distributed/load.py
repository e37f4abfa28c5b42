"""The load: jobs enqueued through the site's own paths, in a thread of the harness, at a steady pace.

One step of the cycle every ``interval`` seconds, in turn:

- ``save``: a page saved in a transaction, as the admin does: the site's search signal records an
  ``index_content`` job in the outbox (``enqueue_on_commit``), delivered on commit, or by a worker's
  outbox drain if Redis was unreachable then. Acknowledged when the transaction commits (the row is
  in PostgreSQL); its key is read from the outbox row inside the transaction;
- ``enqueue``: one ``dist_work`` job, acknowledged when ``enqueue`` returns;
- ``bulk``: ``enqueue_many`` of ``BULK`` ``dist_work`` jobs, acknowledged together when it returns.

(The fourth path, cron, is the workers' own: ``dist_cron`` every 5 s, see ``settings.py``.)

An enqueue that raises is not acknowledged: it is counted as refused, and the cycle goes on.
Acknowledged keys go to the current ``Phase`` with the time (harness's monotonic clock) and path.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field

BULK = 10
STEPS = ("save", "enqueue", "enqueue", "bulk")


@dataclass
class Ack:
    key: str
    at: float  # time.monotonic() of the harness when the call returned
    path: str


@dataclass
class Phase:
    """What the load acknowledged (and had refused) while one fault was under way."""

    name: str
    acked: list[Ack] = field(default_factory=list)
    refused: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)  # the distinct messages of the refusals

    def refuse(self, path: str, exc: BaseException) -> None:
        self.refused[path] = self.refused.get(path, 0) + 1
        message = f"{path}: {type(exc).__name__}: {exc}".splitlines()[0][:200]
        if message not in self.errors and len(self.errors) < 10:
            self.errors.append(message)


class Load(threading.Thread):
    """The load generator; ``phase`` None pauses it. ``stop()`` ends it."""

    def __init__(self, interval: float = 0.05, seconds: float = 0.2) -> None:
        super().__init__(name="load", daemon=True)
        self.interval = interval
        self.seconds = seconds  # how long each dist_work job waits: long enough that a fault finds jobs running
        self.phase: Phase | None = None
        self._stopped = threading.Event()
        self._counter = itertools.count(1)

    def stop(self) -> None:
        self._stopped.set()
        self.join(30)

    def run(self) -> None:
        from django.db import connection

        logging.getLogger("tasks_app").setLevel(logging.CRITICAL)  # refusals are counted, not logged
        steps = itertools.cycle(STEPS)
        next_at = time.monotonic()
        try:
            while not self._stopped.is_set():
                phase = self.phase
                if phase is None:
                    time.sleep(0.05)
                    next_at = time.monotonic()
                    continue
                step = next(steps)
                try:
                    keys = getattr(self, f"_{step}")()
                except Exception as exc:
                    phase.refuse(step, exc)
                    connection.close()  # a connection broken by the error is not reused
                else:
                    now = time.monotonic()
                    phase.acked += [Ack(key, now, step) for key in keys]
                next_at += self.interval
                time.sleep(max(0.0, next_at - time.monotonic()))
                next_at = max(next_at, time.monotonic() - 1)  # after a long refusal, do not burst
        finally:
            connection.close()

    def _save(self) -> list[str]:
        from django.db import transaction

        from pydotorg.pages.models import Page
        from tasks_app.models import OutboxEntry

        with transaction.atomic():
            before = OutboxEntry.objects.order_by("-id").values_list("id", flat=True).first() or 0
            name = uuid.uuid4().hex[:12]
            Page.objects.create(title=f"Harness {name}", path=f"harness/{name}/", content="A page the harness saved.")
            keys = list(OutboxEntry.objects.filter(id__gt=before).values_list("job_key", flat=True))
        return keys

    def _enqueue(self) -> list[str]:
        from tasks_app import enqueue

        return [enqueue("dist_work", seconds=self.seconds, n=next(self._counter)).key]

    def _bulk(self) -> list[str]:
        from tasks_app import enqueue_many

        calls = [{"seconds": self.seconds, "n": next(self._counter)} for _ in range(BULK)]
        return [job.key for job in enqueue_many("dist_work", calls)]
