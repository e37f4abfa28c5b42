"""``uv run saq pydotorg.tasks.worker.settings_dict [flags]``, the older SAQ document's worker command, runs
this project's worker, ``python manage.py runworker``, with the flags mapped (``runworker_argv``); it says so
on one line first.

SAQ's CLI imports this module and reads ``settings_dict``: that read replaces the process with ``runworker``
(``os.execv``), so signals, exit codes and ``--check``'s answer are ``runworker``'s own. Read anywhere else
(an import in a shell or a test), it raises ``ImportError`` naming ``runworker`` and runs nothing.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
from pathlib import Path
from typing import NoReturn

from . import WORKER_COMMAND, not_the_worker, run_by_saq_cli

MANAGE = Path(__file__).resolve().parents[2] / "manage.py"


def runworker_argv(saq_argv: list[str]) -> tuple[list[str], list[str]]:
    """``saq``'s arguments (after the program name) as ``runworker``'s, and notes on those with no
    counterpart. Raises ``SystemExit`` (argparse's usage error, exit 2) for arguments SAQ would refuse.

    ``--verbose``/``-v`` (SAQ: once INFO, twice DEBUG) maps as the README's table does: once ``-v 2``
    (DEBUG), twice ``-v 3`` (SAQ's own DEBUG too); none keeps ``runworker``'s default (INFO).
    """
    # SAQ's own options (saq/__main__.py), so that what it accepted is read the same way here.
    parser = argparse.ArgumentParser(prog="saq", add_help=False)
    parser.add_argument("settings")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--verbose", "-v", action="count", default=0)
    parser.add_argument("--web", action="store_true")
    parser.add_argument("--extra-web-settings", "-e", action="append")
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--quiet", "-q", action="store_true")
    args = parser.parse_args(saq_argv)
    argv, notes = [], []
    if args.check:
        return ["--check"], notes
    if args.workers != 1:
        argv += ["--workers", str(args.workers)]
    if args.verbose:
        argv += ["-v", str(min(args.verbose + 1, 3))]
    if args.web:
        argv += ["--web"] + (["--port", str(args.port)] if args.port is not None else [])
    elif args.port is not None:
        notes.append("--port without --web: no monitor is served")
    if args.extra_web_settings:
        notes.append("--extra-web-settings: runworker --web monitors every queue in SAQ['QUEUES'] already")
    if args.quiet:
        notes.append("--quiet: logging follows Django's LOGGING setting (-v 0 shows warnings only)")
    return argv, notes


def __getattr__(name: str) -> NoReturn:
    if name != "settings_dict":
        if run_by_saq_cli():  # a misspelt `saq pydotorg.tasks.worker.setting_dict`
            not_the_worker(f"{__name__}.{name}")
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if not run_by_saq_cli():
        raise ImportError(
            "pydotorg.tasks.worker.settings_dict is the older SAQ document's worker settings: this project runs "
            "its workers with `uv run python manage.py runworker`, configured by the SAQ setting."
        )
    if multiprocessing.parent_process() is not None:
        # `saq --workers N` forked N - 1 processes before reading the settings: runworker --workers N,
        # which the main process becomes, supervises all N.
        os._exit(0)
    for child in multiprocessing.active_children():
        child.join(5)
    argv, notes = runworker_argv(sys.argv[1:])
    command = [sys.executable, str(MANAGE), "runworker", *argv]
    shown = " ".join(["python", "manage.py", "runworker", *argv])
    print(f"{WORKER_COMMAND} runs this project's worker: {shown}", file=sys.stderr)
    for note in notes:
        print(f"  ({note})", file=sys.stderr)
    sys.stderr.flush()
    sys.stdout.flush()
    os.execv(sys.executable, command)
