"""The older SAQ document's ``pydotorg.tasks`` (``../shared/seed/saq-background-tasks.md``), kept so that its
entry points say where things are now (README, "From the SAQ document and SAQ's own CLI to here").

Here each app's ``tasks.py`` holds its own tasks and ``tasks_app`` enqueues them. This package only answers:

- ``uv run saq pydotorg.tasks.worker.settings_dict ...``: runs ``manage.py runworker`` (``worker.py``);
- ``from pydotorg.tasks import queue``, ``pydotorg.tasks.feeds``, ``pydotorg.tasks.search``: an
  ``ImportError`` naming what to import instead.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from pathlib import Path
from typing import NoReturn

WORKER_COMMAND = "saq pydotorg.tasks.worker.settings_dict"


def run_by_saq_cli() -> bool:
    """Whether this process is SAQ's command line (``saq ...`` or ``python -m saq ...``)."""
    # `python -m saq` runs saq.__main__ as __main__; the `saq` console script imports it.
    if getattr(getattr(sys.modules.get("__main__"), "__spec__", None), "name", None) == "saq.__main__":
        return True
    return Path(sys.argv[0]).name == "saq" and "saq.__main__" in sys.modules


def not_the_worker(path: str, why: str = "not a worker's settings here") -> NoReturn:
    """SAQ's command line was given ``path`` as its settings, near the document's but not it: one line, exit 2
    (once: the processes ``saq --workers N`` forked before reading it exit quietly)."""
    if multiprocessing.parent_process() is not None:
        os._exit(2)
    sys.stderr.write(
        f"saq {path}: {why}. The older SAQ document's worker command is `{WORKER_COMMAND}`, which runs this "
        "project's `python manage.py runworker`.\n"
    )
    raise SystemExit(2)


def moved(module: str, to: str, names: str) -> ImportError:
    """The error for one of the document's modules that is not here: where its ``names`` are now (under SAQ's
    command line, ``saq pydotorg.tasks.feeds...``, one line and exit 2 instead)."""
    message = f"{module} is the older SAQ document's module: here, `from {to} import {names}`"
    if run_by_saq_cli():
        not_the_worker(module, message)
    return ImportError(f"{message}.")


def __getattr__(name: str) -> NoReturn:
    if run_by_saq_cli():  # `saq pydotorg.tasks.worker`: SAQ reads the attribute "worker" of this package
        not_the_worker(f"{__name__}.{name}")
    if name == "queue":
        raise ImportError(
            "pydotorg.tasks.queue is the older SAQ document's queue: here, enqueue with tasks_app's calls, "
            "`from tasks_app import aenqueue, enqueue, enqueue_on_commit` "
            "(`await aenqueue('refresh_all_feeds')`; `enqueue(...)` from sync code)."
        )
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
