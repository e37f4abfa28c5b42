import pytest

from tests.redis_server import free_port

from .backends.fixtures import worker_in_thread  # noqa: F401  (a fixture for any tasks_app test)
from .engine.redis_clock import ClockedRedis
from .helpers import WorkerProcess, queue_opener


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
    return free_port()  # never handed to a server of this run later: it stays closed


@pytest.fixture
def redis_clock(tmp_path):
    """A Redis of the test's own whose clock the test moves (``shift``, ``move_to``): see ``redis_clock.py``."""
    server = ClockedRedis(tmp_path).start()
    yield server
    server.stop()


@pytest.fixture
def clocked_queue(redis_clock):
    """``open_queue`` on ``redis_clock``'s Redis."""
    return queue_opener(redis_clock.url)


@pytest.fixture
def clocked_default(redis_clock, settings):
    """The default queue on ``redis_clock``'s Redis: for tests that let time pass for jobs (the engine
    stamps and compares every job time on Redis's clock), with ``redis_clock.travel``."""
    default = {**settings.SAQ["QUEUES"]["default"], "URL": redis_clock.url}
    settings.SAQ = {**settings.SAQ, "QUEUES": {**settings.SAQ["QUEUES"], "default": default}}
    return redis_clock
