"""The surroundings of a ``bench/peers.py`` run: its own redis-server, Django on a throwaway database,
and the environment every worker starts with."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

import redis

from tests.redis_server import RedisServer


def start_redis(stack: ExitStack) -> RedisServer:
    if shutil.which("redis-server") is None:
        sys.exit("redis-server is not on PATH: install Redis (apt-get install redis-server); the benchmark "
                 "starts a server of its own on a free port.")  # fmt: skip
    directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="peers-redis-")))
    server = RedisServer(directory, persistent=False)
    stack.callback(server.stop)
    try:
        server.start()
    except (redis.ConnectionError, OSError) as exc:
        sys.exit(f"Could not start redis-server on port {server.port}: {exc}")
    return server


def setup_django(server: RedisServer, stack: ExitStack) -> None:
    """Point Django, tasks_app and every worker at the benchmark's Redis; create the throwaway database."""
    os.environ.update(
        DJANGO_SETTINGS_MODULE="bench.settings",
        BENCH_REDIS_URL=server.url,
        TEST_REDIS_URL=server.url,  # else the test settings would lease a database on the shared Redis
        PEERS_PROBE_URL=server.url,
    )
    os.environ.setdefault("TEST_DATABASE_URL", f"postgres://postgres@127.0.0.1:5432/pydotorg_peers_{os.getpid()}")
    import django

    django.setup()
    from django.db import OperationalError, connection

    from bench.support import throwaway_databases

    try:
        stack.enter_context(throwaway_databases(server.url))
    except OperationalError as exc:
        sys.exit(
            f"Cannot create the throwaway PostgreSQL database (TEST_DATABASE_URL): {str(exc).strip()}\n"
            "Start PostgreSQL (pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start), "
            "or point TEST_DATABASE_URL at a server where user postgres may create databases."
        )
    db = connection.settings_dict
    # The workers use the throwaway database itself: runworker checks it at start and drains its outbox.
    os.environ["TEST_DATABASE_URL"] = f"postgres://{db['USER'] or 'postgres'}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def worker_env(stack: ExitStack) -> dict[str, str]:
    """The environment of every worker: this one's, with Python's bytecode cached in a folder of the run's own.

    Deployed code has its bytecode cached; where PYTHONDONTWRITEBYTECODE is set (as on the team's
    machine), each start would compile every module it imports from source instead (about a second
    for Django). The cache goes to a temporary folder, so nothing is written beside the code.
    """
    env = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = stack.enter_context(tempfile.TemporaryDirectory(prefix="peers-pycache-"))
    return env
