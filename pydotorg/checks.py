"""``manage.py check --deploy``: the problems that stop the site serving with DEBUG off (pydotorg/serving.py)."""

from __future__ import annotations

from django.core.checks import Error, Tags, register

from .serving import serving_problems


@register(Tags.security, deploy=True)
def check_serving(app_configs=None, **kwargs) -> list[Error]:
    return [Error(problem.message, id=problem.check_id) for problem in serving_problems()]


def sqlite_problems() -> list[str]:
    """Why a SQLite database in DATABASES cannot be opened (one message each), or none.

    Django opens the database before any system check of ours runs, and fails with a 40-line
    traceback ending in "unable to open database file": manage.py prints these instead.
    """
    import os
    from pathlib import Path

    from django.conf import settings

    problems = []
    for alias, database in settings.DATABASES.items():
        name = str(database.get("NAME") or "")
        if not database.get("ENGINE", "").endswith("sqlite3") or name in ("", ":memory:") or name.startswith("file:"):
            continue
        path = Path(name)
        if path.exists():
            problem = None if os.access(path, os.R_OK | os.W_OK) else "exists but cannot be read and written"
        elif not path.parent.is_dir():
            problem = f"cannot be created: the directory {path.parent} does not exist"
        else:
            problem = None if os.access(path.parent, os.W_OK | os.X_OK) else f"cannot be created in {path.parent}"
        if problem:
            problems.append(
                f"The SQLite database {path} (DATABASES[{alias!r}], from DATABASE_URL) {problem}. Point "
                "DATABASE_URL at a writable place, e.g. sqlite:///db.sqlite3 (next to manage.py), or create "
                "the directory."
            )
    return problems


def unreachable_database(exc: Exception) -> str | None:
    """One line (naming DATABASE_URL, no password) when ``exc``, which stopped a command, is a failure to
    connect to a database: what manage.py prints instead of its traceback. None for any other error.

    The database is the one this process tried and never reached (its connection is still None); the error
    is the driver's own, read rather than provoked again (an unreachable host would make one wait twice).
    """
    from django.db import connections

    from tasks_app.process.runner import unreachable_database as line

    connecting = ("connection failed", "could not connect", "connection to server", "could not translate host",
                  "failed to resolve host")  # fmt: skip
    if not str(exc).lower().startswith(connecting):
        return None
    tried = [wrapper.alias for wrapper in connections.all(initialized_only=True) if wrapper.connection is None]
    return line(tried[0], exc) if len(tried) == 1 else None
