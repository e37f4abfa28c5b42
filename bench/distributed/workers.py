"""Worker processes: ``manage.py runworker`` inside a host's network namespace, one per host.

A worker's environment names the servers by the service address (``network.py``), the database
by the PostgreSQL forwarder (``topology.py``) and the host (``DIST_HOST``, for the ledger). A
skewed worker runs under libfaketime (``FAKETIME="+300s"``, what ``faketime -f '+300s'`` sets),
preloaded into the worker itself rather than through the ``faketime`` wrapper, so that the PID
the harness pauses and kills is the worker's own.

Each worker's output goes to ``<directory>/<host>-<n>.log``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .cleanup import Resources, stop_process
from .network import Host

ROOT = Path(__file__).resolve().parents[2]
LIBFAKETIME = next(
    (str(p) for p in Path("/usr/lib").glob("*/faketime/libfaketime.so.1")), "/usr/lib/faketime/libfaketime.so.1"
)


@dataclass
class Worker:
    host: Host
    process: subprocess.Popen
    log: Path
    skew: str | None = None
    queue: str = "default"
    killed: bool = False  # on purpose: not to be restarted
    replaced: bool = False  # exited and started again

    @property
    def pid(self) -> int:
        return self.process.pid

    def pause(self) -> None:
        os.kill(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.pid, signal.SIGCONT)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()
        self.killed = True

    def cpu_seconds(self) -> float:
        """User + system CPU time used so far (from /proc; 0 once it has exited)."""
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Workers:
    """Starts and stops workers; every process is registered in ``resources``."""

    resources: Resources
    directory: Path
    env: dict[str, str]  # the servers and the database: DIST_QUEUE_URL, DIST_LEDGER_URL, TEST_DATABASE_URL...
    concurrency: int = 10
    started: list[Worker] = field(default_factory=list)

    def start(self, host: Host, *, skew: str | None = None, queue: str = "default") -> Worker:
        """A worker of ``queue`` on ``host``; ``skew`` (e.g. ``"+300s"``) offsets its clock with libfaketime."""
        env = {**os.environ, **self.env, "DIST_HOST": host.name, "PYTHONUNBUFFERED": "1",
               "DJANGO_SETTINGS_MODULE": "bench.distributed.settings"}  # fmt: skip
        if skew:
            env.update(LD_PRELOAD=LIBFAKETIME, FAKETIME=skew, FAKETIME_DONT_FAKE_MONOTONIC="1")
        number = sum(1 for w in self.started if w.host == host) + 1
        log = self.directory / f"{host.name}-{number}.log"
        argv = [sys.executable, "manage.py", "runworker", "--skip-checks", "--no-reload", "-v", "1",
                "--concurrency", str(self.concurrency), "--queue", queue]  # fmt: skip
        with open(log, "ab") as out:
            process = subprocess.Popen(host.exec_argv(argv), cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        self.resources.process(process)
        worker = Worker(host, process, log, skew, queue)
        self.started.append(worker)
        return worker

    @property
    def running(self) -> list[Worker]:
        return [w for w in self.started if w.process.poll() is None]

    def stop(self, worker: Worker) -> None:
        stop_process(worker.process)

    def stop_all(self) -> None:
        for worker in self.running:
            worker.process.send_signal(signal.SIGCONT)
            worker.process.send_signal(signal.SIGTERM)
        for worker in self.started:
            stop_process(worker.process)

    def restart_exited(self) -> list[Worker]:
        """Start again, on the same host and with the same clock, each worker that exited without
        being killed on purpose (one started while Redis was unreachable exits at once: fail fast),
        as systemd or Kubernetes would."""
        again = []
        for worker in list(self.started):
            if worker.process.poll() is not None and not worker.killed and not worker.replaced:
                worker.replaced = True
                again.append(self.start(worker.host, skew=worker.skew, queue=worker.queue))
        return again
