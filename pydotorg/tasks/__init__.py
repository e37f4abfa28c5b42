"""The older SAQ document's ``pydotorg.tasks`` (``../shared/seed/saq-background-tasks.md``), kept so that its
entry points say where things are now (README, "From the SAQ document and SAQ's own CLI to here").

Here each app's ``tasks.py`` holds its own tasks and ``tasks_app`` enqueues them. This package only answers:

- ``uv run saq pydotorg.tasks.worker.settings_dict ...``: runs ``manage.py runworker`` (``worker.py``);
- ``from pydotorg.tasks import queue``, ``pydotorg.tasks.feeds``, ``pydotorg.tasks.search``: an
  ``ImportError`` naming what to import instead.
"""

from __future__ import annotations

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


def not_the_worker(name: str) -> NoReturn:
    """SAQ's command line was given a settings path near the document's, but not it: one line, exit 2."""
    given = sys.argv[1] if len(sys.argv) > 1 else name
    sys.stderr.write(
        f"saq {given}: not a worker's settings here. The older SAQ document's worker command is "
        f"`{WORKER_COMMAND}`, which runs this project's `python manage.py runworker`.\n"
    )
    raise SystemExit(2)


def moved(module: str, to: str, names: str) -> ImportError:
    """The error for one of the document's modules that is not here: where its ``names`` are now."""
    return ImportError(f"{module} is the older SAQ document's module: here, `from {to} import {names}`.")


def __getattr__(name: str) -> NoReturn:
    if name == "queue":
        raise ImportError(
            "pydotorg.tasks.queue is the older SAQ document's queue: here, enqueue with tasks_app's calls, "
            "`from tasks_app import aenqueue, enqueue, enqueue_on_commit` "
            "(`await aenqueue('refresh_all_feeds')`; `enqueue(...)` from sync code)."
        )
    if run_by_saq_cli():  # `saq pydotorg.tasks.worker`: SAQ reads the attribute "worker" of this package
        not_the_worker(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
