import socket

import pytest

from .backends.fixtures import worker_in_thread  # noqa: F401  (a fixture for any tasks_app test)
from .helpers import WorkerProcess


@pytest.fixture
def start_worker(subprocess_env):
    started: list[WorkerProcess] = []

    def start(*args: str, env: dict | None = None) -> WorkerProcess:
        worker = WorkerProcess(*args, env=env or subprocess_env)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.kill()


@pytest.fixture
def closed_port():
    """A local port nothing listens on: Redis there is "down"."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
