"""One timed run of ``bench/peers.py``: queue N jobs, start a worker, wait for them all, and read
the times the marked jobs recorded (``bench/peer_jobs/probe.py``) into a ``RunResult``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import statistics
import subprocess
import time
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

import psutil

from bench.peer_jobs import probe
from bench.peer_systems import System
from tests.redis_server import RedisServer

POLL_S = 0.05
SETTLE_S = 0.3  # after the count reaches N: long enough for a job run twice to be published too


class RunFailed(Exception):
    """A run whose figure is void: the reason says why."""


@dataclass
class RunResult:
    rate: float  # jobs/s
    startup: float  # s, spawn -> first job start
    worker_cpu_us: float | None  # CPU of the worker's processes per job, after the first jobs ran
    redis_cpu_us: float | None  # CPU of redis-server per job, same window (None: the run was too short to tell)
    estimate_error: float | None = None  # --mark-all: (rate from the usual marks) / (rate from all) - 1
    gap_ms: float | None = None  # --mark-all: median time from a job's end to the start of the job that took its slot


def mark_plan(count: int, concurrency: int, mark_all: bool) -> list[int]:
    """Each job's ``mark``: its position + 1 for the first ``concurrency`` and the last ``2 x concurrency``
    jobs, which record their times; 0 for the others."""
    return [i + 1 if mark_all or i < concurrency or i >= count - 2 * concurrency else 0 for i in range(count)]


def tree_cpu(pid: int) -> float:
    """User + system CPU seconds of a process and its descendants (0 for those already gone)."""
    total = 0.0
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    for process in processes:
        with suppress(psutil.NoSuchProcess):
            times = process.cpu_times()
            total += times.user + times.system
    return total


class Bench:
    """Runs workers on the benchmark's Redis; on exit, stops every worker it started."""

    def __init__(self, server: RedisServer, logs: Path, mark_all: bool, env: dict[str, str]) -> None:
        self.server = server
        self.env = env
        self.client = server.client()
        self.redis_process = psutil.Process(server.process.pid)
        self.logs = logs
        self.mark_all = mark_all
        self.loop = asyncio.new_event_loop()  # for the async enqueueing APIs, kept so their connections are reused
        self.live: list[subprocess.Popen] = []
        self.failures: list[str] = []

    def __enter__(self) -> Bench:
        return self

    def __exit__(self, *exc_info: object) -> None:
        for process in list(self.live):
            self.stop(process)
        self.loop.close()
        self.client.close()

    def flush(self) -> None:
        self.client.flushall()

    def done(self) -> int:
        return sum(int(value) for value in self.client.hvals(probe.DONE_KEY))

    def run(self, system: System, task: str, count: int, concurrency: int, label: str) -> RunResult | None:
        """Queue ``count`` jobs of ``task``, start the worker, wait for them all; None if the run is void."""
        self.flush()
        total_concurrency = concurrency * system.processes
        marks = mark_plan(count, total_concurrency, self.mark_all)
        system.fill(task, marks)
        log_path = self.logs / f"{label}.log"
        env = {**self.env, "PEERS_CONCURRENCY": str(concurrency)}
        with open(log_path, "wb") as log:
            spawned = time.time()
            process = subprocess.Popen(
                system.command(concurrency), cwd=system.cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stopped as a whole, never left behind
            )  # fmt: skip
        self.live.append(process)
        try:
            try:
                cpu = self._wait(process, count, deadline=time.monotonic() + 60 + count / 50)
            finally:
                self.stop(process)
            return self._result(marks, total_concurrency, count, spawned, cpu)
        except RunFailed as exc:
            self.failures.append(f"{label}: {exc} (log: {log_path})")
            print(f"\n  VOID {label}: {exc}\n  worker log: {log_path}", flush=True)
            return None

    def _wait(self, process: subprocess.Popen, count: int, deadline: float) -> tuple[float, float] | None:
        """Wait until ``count`` jobs ran; returns (worker CPU s, redis CPU s) per job after the first ones
        (None when more than half of the jobs had run by the first look)."""
        base = None
        while True:
            done = self.done()
            if base is None and done:
                base = (done, tree_cpu(process.pid), self._redis_cpu())
            if done >= count:
                worker_cpu, redis_cpu = tree_cpu(process.pid), self._redis_cpu()
                time.sleep(SETTLE_S)
                done = self.done()
                if done != count:
                    raise RunFailed(f"{done} job completions for {count} jobs: some ran more than once")
                jobs = count - base[0]
                if jobs < count / 2:
                    return None
                return (worker_cpu - base[1]) / jobs, (redis_cpu - base[2]) / jobs
            if process.poll() is not None:
                raise RunFailed(f"the worker exited (code {process.returncode}) after {done} of {count} jobs")
            if time.monotonic() > deadline:
                raise RunFailed(f"timed out after {done} of {count} jobs")
            time.sleep(POLL_S)

    def _redis_cpu(self) -> float:
        times = self.redis_process.cpu_times()
        return times.user + times.system

    def _result(
        self, marks: list[int], concurrency: int, count: int, spawned: float, cpu: tuple[float, float] | None
    ) -> RunResult:
        times: dict[int, tuple[float, float]] = {}
        for raw in self.client.lrange(probe.MARKS_KEY, 0, -1):
            mark, start, end = raw.split()
            if int(mark) in times:
                raise RunFailed(f"job {int(mark) - 1} recorded its times twice: it ran more than once")
            times[int(mark)] = (float(start), float(end))
        expected = {mark for mark in marks if mark}
        if set(times) != expected:
            raise RunFailed(f"{len(expected - set(times))} marked jobs did not record their times")
        first_start = min(start for start, _ in times.values())
        rate = count / (max(end for _, end in times.values()) - first_start)
        worker_cpu, redis_cpu = (cpu[0] * 1e6, cpu[1] * 1e6) if cpu else (None, None)
        result = RunResult(rate, first_start - spawned, worker_cpu, redis_cpu)
        if self.mark_all:
            usual = [times[mark] for mark in mark_plan(count, concurrency, False) if mark]
            usual_rate = count / (max(end for _, end in usual) - min(start for start, _ in usual))
            result.estimate_error = usual_rate / rate - 1
            # With every slot busy, the k-th job to end frees the slot that the (k + concurrency)-th job to
            # start takes: the gap between them is the system's own time per job, outside the job function.
            starts = sorted(start for start, _ in times.values())
            ends = sorted(end for _, end in times.values())
            gaps = [starts[k + concurrency] - ends[k] for k in range(count - concurrency)]
            result.gap_ms = statistics.median(gaps) * 1000 if gaps else None
        return result

    def stop(self, process: subprocess.Popen) -> None:
        """SIGTERM to the worker, then SIGKILL to whatever is left of its process group."""
        if process.poll() is None:
            with suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            with suppress(subprocess.TimeoutExpired):
                process.wait(15)
        deadline = time.monotonic() + 5  # a supervisor's or dramatiq's children may still be on their way out
        while time.monotonic() < deadline and _group_alive(process.pid):
            time.sleep(0.05)
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        with suppress(ValueError):
            self.live.remove(process)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@dataclass(frozen=True)
class Workload:
    key: str
    title: str
    task: str
    concurrency: int
    count: int
    systems: list[System]


Runs = dict[tuple[str, str], list[RunResult | None]]
Enqueued = dict[tuple[int, str], list[float]]
