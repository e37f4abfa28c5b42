#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys

# Exit status when the settings cannot be loaded (a bad environment variable, for example).
EXIT_SETTINGS = 2


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pydotorg.settings")
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line
    from django.db import OperationalError

    try:
        execute_from_command_line(sys.argv)
    except OperationalError as exc:
        # A SQLite file that cannot be opened, or a database server that cannot be reached (any command:
        # migrate, createsuperuser, reindex_search...): say which and why, in one line (--traceback: as usual).
        from pydotorg.checks import sqlite_problems, unreachable_database

        if "--traceback" in sys.argv:
            raise
        problems = sqlite_problems()
        if not problems and (line := unreachable_database(exc)):
            problems = [line]
        if not problems:
            raise
        sys.stderr.write("".join(f"{problem}\n" for problem in problems))
        sys.exit(EXIT_SETTINGS)
    except ImproperlyConfigured as exc:
        # Raised while loading the settings: the message names the variable and what is wrong,
        # which is all a traceback through Django's settings import would add to. Raised later,
        # by a command, or with --traceback: the traceback as usual.
        if settings.configured or "--traceback" in sys.argv:
            raise
        sys.stderr.write(f"ImproperlyConfigured: {exc}\n")
        sys.exit(EXIT_SETTINGS)


if __name__ == "__main__":
    main()
