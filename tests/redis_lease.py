"""A Redis database of this test run's own, leased for as long as the run's process lives.

Several test runs (two checkouts, CI beside a developer) may share one Redis server.
Each run claims a free database from 1 to 15 by naming a connection it keeps open
(``CLIENT SETNAME pydotorg-tests:db<N>``). The lease needs no expiry and no cleanup:
it ends when the connection closes, that is when the run's process exits, however
it exits. Two runs that pick the same number at once both see it; the connection
with the lower client id keeps it and the other tries the next number.

Database 0 is never leased: it is where a developer's own worker runs.
"""

from __future__ import annotations

import os

import redis

from tasks_app.redis_urls import sync_client

PREFIX = "pydotorg-tests:db"
CANDIDATES = range(1, 16)

_lease: redis.Redis | None = None  # the connection whose name is the lease; kept open on purpose


def _holders(client: redis.Redis) -> dict[str, list[int]]:
    held: dict[str, list[int]] = {}
    for entry in client.client_list():
        name = entry.get("name") or ""
        if name.startswith(PREFIX):
            held.setdefault(name, []).append(int(entry["id"]))
    return held


def lease_database(server_url: str) -> str:
    """Return ``server_url`` with the path of a database this process now holds.

    ``server_url`` is a redis:// URL whose own database number is ignored.
    Raises RuntimeError naming TEST_REDIS_URL when all fifteen are taken.
    """
    global _lease
    base = server_url.rsplit("/", 1)[0] if server_url.count("/") > 2 else server_url
    client = sync_client(base + "/0", single_connection_client=True)
    my_id = client.client_id()
    for number in CANDIDATES:
        name = f"{PREFIX}{number}"
        if name in _holders(client):
            continue
        client.client_setname(name)
        if min(_holders(client)[name]) == my_id:
            _lease = client
            return f"{base}/{number}"
    client.close()
    raise RuntimeError(
        "Every Redis database from 1 to 15 is leased by another test run. "
        "Wait for one to finish, or set TEST_REDIS_URL to a database of your own."
    )


def leased_redis_url(default_server: str = "redis://127.0.0.1:6379") -> str:
    """TEST_REDIS_URL when set (a subprocess of a run inherits its parent's), else a fresh lease.

    The lease is exported as TEST_REDIS_URL, so workers that a test starts use the same database.
    """
    url = os.environ.get("TEST_REDIS_URL")
    if not url:
        url = lease_database(default_server)
        os.environ["TEST_REDIS_URL"] = url
    return url
