"""The figures of issue 19, measured side by side in one run, after the faults (``print_all``).

- **Failover under a stream of enqueues**: ``STREAMS`` concurrent one-at-a-time enqueuers write to a
  queue for ``BEFORE_S`` seconds, the primary is SIGKILLed, they go on for ``AFTER_S`` seconds; then
  every acknowledged job is looked up on the new primary. Once with ``wait_replicas=1`` (queue
  ``durable``), once without (``plain``). Printed: acknowledged, lost, and the enqueue outage (the
  longest time without an acknowledgement, from a second before the kill on). The time to the first
  *completed* job is the ``kill-primary`` row of the fault table (workers run the ``default`` queue).
- **Enqueue rate** with ``wait_replicas=1`` against without: one job per call, and bulk
  (``aenqueue_many`` of ``BULK`` jobs, one ``WAIT`` per pipeline), ``RATE_S`` seconds each, in
  ``RATE_ROUNDS`` interleaved rounds; the median.
- **Throughput with 3 worker hosts against 1**, on the same Redis: ``THROUGHPUT_JOBS`` no-op jobs
  (``dist_work(seconds=0)``: the job path itself, with the ledger's two writes) enqueued at once to
  the ``throughput`` queue, run by workers started for it (the other figures' jobs are never run);
  jobs per second from the enqueue to the last completion (ledger clock), and the workers' CPU
  seconds per job (from /proc).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import statistics
import time

from . import ledger
from .harness import Harness

STREAMS = 8
BEFORE_S, AFTER_S = 3.0, 15.0
RATE_S = 3.0
RATE_ROUNDS = 3  # rounds in which each queue and way is measured once, in turn: the median is printed
BULK = 100
THROUGHPUT_JOBS = 3000


async def _stream(queue: str, acked: list[tuple[str, float]], stop: asyncio.Event) -> None:
    from tasks_app import aenqueue

    while not stop.is_set():
        try:
            job = await aenqueue("dist_work", queue=queue, seconds=0)
        except Exception:
            await asyncio.sleep(0.05)  # refused (Redis failing over, or too few replicas): not acknowledged
        else:
            acked.append((job.key, time.monotonic()))


async def _failover(harness: Harness, queue: str) -> dict[str, float]:
    from tasks_app.enqueueing.connections import disconnect_all, make_queue

    acked: list[tuple[str, float]] = []
    stop = asyncio.Event()
    streams = [asyncio.create_task(_stream(queue, acked, stop)) for _ in range(STREAMS)]
    await asyncio.sleep(BEFORE_S)
    dead = await asyncio.to_thread(harness.topology.kill_primary)
    killed_at = time.monotonic()
    await asyncio.to_thread(harness.topology.wait_failover, dead)
    await asyncio.to_thread(harness.topology.restore, dead)  # as its supervisor would
    await asyncio.sleep(max(0.0, AFTER_S - (time.monotonic() - killed_at)))
    stop.set()
    await asyncio.gather(*streams)
    await disconnect_all()
    check = make_queue(queue, socket_timeout=5)
    keys = [key for key, _ in acked]
    missing = 0
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        missing += sum(job is None for job in await check.jobs(chunk))
    await check.disconnect()
    # The enqueue outage: the longest time without an acknowledgement around the kill.
    times = sorted(at for _, at in acked if at > killed_at - 1)
    outage = max((b - a for a, b in itertools.pairwise(times)), default=float("nan"))
    return {"acked": len(acked), "lost": missing, "outage_s": outage}


async def _rate(queue: str, bulk: bool) -> float:
    from tasks_app import aenqueue, aenqueue_many
    from tasks_app.enqueueing.connections import disconnect_all

    count = 0
    deadline = time.monotonic() + RATE_S
    started = time.monotonic()
    while time.monotonic() < deadline:
        if bulk:
            count += len(await aenqueue_many("dist_work", [{"seconds": 0}] * BULK, queue=queue))
        else:
            await aenqueue("dist_work", queue=queue, seconds=0)
            count += 1
    rate = count / (time.monotonic() - started)
    await disconnect_all()
    return rate


def _throughput(harness: Harness, hosts: int) -> tuple[float, float]:
    """(jobs per second, CPU seconds per job) of ``hosts`` workers serving the ``plain`` queue."""
    from tasks_app import enqueue_many

    workers = [harness.workers.start(host, queue="throughput") for host in harness.hosts[:hosts]]
    try:
        harness.wait_until_working(workers, "throughput")
        time.sleep(2)  # the probe jobs are done
        cpu_before = sum(w.cpu_seconds() for w in workers)
        start_ms = ledger.now_ms(harness.ledger)
        keys = {job.key for job in enqueue_many("dist_work", [{"seconds": 0}] * THROUGHPUT_JOBS, queue="throughput")}
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            time.sleep(1)
            done = ledger.read(harness.ledger)
            ends = [e.ended_ms for k in keys for e in done.executions.get(k, []) if e.ended_ms]
            if len(ends) >= len(keys):
                break
        cpu = sum(w.cpu_seconds() for w in workers) - cpu_before
        return len(keys) / ((max(ends) - start_ms) / 1000), cpu / len(keys)
    finally:
        for worker in workers:
            worker.killed = True
            harness.workers.stop(worker)


def print_all(harness: Harness) -> None:
    """Measure and print every figure (the failover figures only without ``tls_acl``: it uses no sentinels)."""
    print("Figures")
    if not harness.tls_acl:
        for queue, label in (("durable", "wait_replicas=1"), ("plain", "no wait_replicas")):
            result = asyncio.run(_failover(harness, queue))
            print(f"  failover, {label:<16}: {result['acked']:>6} acknowledged, {result['lost']} lost; "
                  f"no enqueue acknowledged for {result['outage_s']:.1f}s around the kill")  # fmt: skip
        primary = next((r for r in harness.rows if r.fault == "kill-primary"), None)
        if primary is not None and primary.first_completion_s is not None:
            print(f"  failover: first job completed {primary.first_completion_s:.1f}s after the primary's death")
    else:
        print("  failover: not measured (--tls-acl: the clients use the primary's own URL, not the sentinels)")
    measured: dict[tuple[str, bool], list[float]] = {}
    for _ in range(RATE_ROUNDS):  # interleaved, so that the machine's other load falls on both alike
        for queue in ("plain", "durable"):
            for bulk in (False, True):
                measured.setdefault((queue, bulk), []).append(asyncio.run(_rate(queue, bulk)))
    rates = {key: statistics.median(values) for key, values in measured.items()}
    for bulk in (False, True):
        how = f"bulk of {BULK}" if bulk else "one at a time"
        line = f"  enqueue rate, {how:<13}: {rates['plain', bulk]:>8.0f}/s"
        if ("durable", bulk) in rates:
            ratio = rates["durable", bulk] / rates["plain", bulk]
            line += f" without wait_replicas, {rates['durable', bulk]:>8.0f}/s with wait_replicas=1 ({ratio:.2f}x)"
        print(line)
    cores = len(os.sched_getaffinity(0))
    for hosts in (1, 3):
        rate, cpu = _throughput(harness, hosts)
        print(f"  throughput, {hosts} host(s): {rate:>6.0f} jobs/s, {cpu * 1000:.2f} ms CPU per job ({cores} cores)")
