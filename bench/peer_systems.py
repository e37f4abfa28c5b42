"""The worker systems of ``bench/peers.py``: how each queues its jobs, and the command that starts its worker.

Every system runs the same job functions (``bench/peer_jobs/``), started the way its users start it.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable  # every worker is started by the same interpreter, without `uv run` in between


class System:
    """One worker system: how to queue the jobs, and the command that starts its worker."""

    name: str
    processes = 1  # worker processes, each running ``concurrency`` jobs at once
    cwd = ROOT  # where its worker starts

    def fill(self, task: str, marks: Sequence[int]) -> None:
        raise NotImplementedError

    def command(self, concurrency: int) -> list[str]:
        raise NotImplementedError


class Runworker(System):
    def __init__(self, workers: int | None = None) -> None:
        self.processes = workers or 1
        self.name = f"runworker --workers {workers}" if workers else "runworker"

    def fill(self, task: str, marks: Sequence[int]) -> None:
        from tasks_app import enqueue_many

        enqueue_many(task, [{"mark": mark} for mark in marks])

    def command(self, concurrency: int) -> list[str]:
        return [PYTHON, "manage.py", "runworker", "--skip-checks", "--no-reload", "--concurrency", str(concurrency),
                "--workers", str(self.processes), "-v", "0"]  # fmt: skip


class BaseRunworker(Runworker):
    """``runworker`` of the checkout at ``root`` (``--baseline``), on that checkout's own virtualenv."""

    # Run by the baseline's Python, in the baseline's folder: its own tasks_app writes the records its worker reads.
    FILL = (
        "import json, sys, django; django.setup(); from tasks_app import enqueue_many; "
        "enqueue_many(sys.argv[1], [{'mark': mark} for mark in json.load(sys.stdin)])"
    )

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        super().__init__()
        self.name, self.cwd, self.env = "runworker-base", root, env
        self.python = str(root / ".venv" / "bin" / "python")

    def fill(self, task: str, marks: Sequence[int]) -> None:
        subprocess.run([self.python, "-c", self.FILL, task], input=json.dumps(list(marks)).encode(), cwd=self.cwd,
                       env=self.env, check=True)  # fmt: skip

    def command(self, concurrency: int) -> list[str]:
        return [self.python, *super().command(concurrency)[1:]]


class BareSaq(System):
    name = "saq"

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def fill(self, task: str, marks: Sequence[int]) -> None:
        from saq import Queue
        from saq.job import Job

        async def fill() -> None:
            queue = Queue.from_url(os.environ["PEERS_PROBE_URL"])
            try:
                for mark in marks:  # one after another: the queue's order is the enqueue order the marks assume
                    await queue.enqueue(Job(function=task, kwargs={"mark": mark}))
            finally:
                await queue.disconnect()

        self.loop.run_until_complete(fill())

    def command(self, concurrency: int) -> list[str]:
        return [PYTHON, "-m", "saq", "bench.peer_jobs.saq_worker.settings"]


class Huey(System):
    name = "huey"

    def fill(self, task: str, marks: Sequence[int]) -> None:
        from bench.peer_jobs import huey_app

        function = getattr(huey_app, task)
        for mark in marks:
            function(mark=mark)

    def command(self, concurrency: int) -> list[str]:
        # -q: warnings only, as runworker's -v 0 (huey logs two INFO lines per task otherwise).
        return [PYTHON, "-m", "huey.bin.huey_consumer", "bench.peer_jobs.huey_app.huey", "-k", "thread",
                "-w", str(concurrency), "-q"]  # fmt: skip


class Dramatiq(System):
    name = "dramatiq"

    def fill(self, task: str, marks: Sequence[int]) -> None:
        from bench.peer_jobs import dramatiq_app

        actor = getattr(dramatiq_app, task)
        for mark in marks:
            actor.send(mark=mark)

    def command(self, concurrency: int) -> list[str]:
        return [PYTHON, "-m", "dramatiq", "bench.peer_jobs.dramatiq_app", "--processes", "1",
                "--threads", str(concurrency)]  # fmt: skip
