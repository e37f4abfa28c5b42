"""What any asyncio worker can reach on ``bench/peers.py``'s ``io10`` workload, with no queue at all.

    uv run python bench/io_floor.py [--seconds 6] [--cpu-us 0,100,157,250] [--loop asyncio|uvloop]

Ten coroutines on one event loop, each in a loop of ``asyncio.sleep(0.02)`` followed by a busy wait of
N microseconds (the CPU a worker spends per job on its loop: taking, recording, its outcome's write),
and the same ten loops in threads with ``time.sleep`` (as huey's and dramatiq's workers run jobs), for
comparison. It prints jobs/s: the ceiling is 500 (10 slots x 50 jobs/s). ``--loop uvloop`` runs the
coroutines on uvloop, as ``runworker`` does (its timers have millisecond resolution).

Two runs per figure, in two shapes: each coroutine goes straight back to sleep after its CPU, or first
yields once (``await asyncio.sleep(0)``, as a round trip to Redis does), which makes the ten wait for
each other's CPU before sleeping again: the slots "move in lockstep" (issue 21). ``bench/peers.py``'s
"CPU per job" row gives runworker's N (worker processes' CPU over jobs: the loop's share is most of it).
"""

from __future__ import annotations

import argparse
import asyncio
import threading
import time
from collections.abc import Callable

SLOTS = 10
SLEEP_S = 0.02


def _burn(microseconds: float) -> None:
    end = time.perf_counter() + microseconds / 1e6
    while time.perf_counter() < end:
        pass


async def _slots(seconds: float, cpu_us: float, yield_once: bool) -> float:
    done = [0]
    stop = time.monotonic() + seconds

    async def slot() -> None:
        while time.monotonic() < stop:
            await asyncio.sleep(SLEEP_S)
            _burn(cpu_us)
            if yield_once:
                await asyncio.sleep(0)
            done[0] += 1

    began = time.monotonic()
    await asyncio.gather(*(slot() for _ in range(SLOTS)))
    return done[0] / (time.monotonic() - began)


def _threads(seconds: float, cpu_us: float) -> float:
    done = [0]
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def slot() -> None:
        while time.monotonic() < stop:
            time.sleep(SLEEP_S)
            _burn(cpu_us)
            with lock:
                done[0] += 1

    began = time.monotonic()
    threads = [threading.Thread(target=slot) for _ in range(SLOTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return done[0] / (time.monotonic() - began)


def _twice(run: Callable[[], float]) -> str:
    return " ".join(f"{run():6.1f}" for _ in range(2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="length of each run (default 6)")
    parser.add_argument("--cpu-us", default="0,100,157,250", help="CPU per job, microseconds, comma-separated")
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio", help="event loop (default asyncio)")
    args = parser.parse_args()
    if args.loop == "uvloop":
        import uvloop  # not on Windows (pyproject.toml)

        run = uvloop.run
    else:
        run = asyncio.run
    try:
        cpus = [float(value) for value in args.cpu_us.split(",")]
    except ValueError:
        parser.error(f"--cpu-us takes numbers separated by commas, e.g. 0,100,157 (got {args.cpu_us!r})")
    if args.seconds <= 0 or any(cpu < 0 for cpu in cpus):
        parser.error("--seconds must be above 0 and every --cpu-us at least 0")
    print(f"{SLOTS} slots of {SLEEP_S * 1000:.0f} ms sleeps, {args.seconds:g} s per run, jobs/s (ceiling 500):")
    loop = args.loop
    print(f"  {'CPU per job':>12}  {loop + ', straight back':>24}  {loop + ', one yield':>20}  {'threads':>16}")
    for cpu in cpus:
        straight = _twice(lambda cpu=cpu: run(_slots(args.seconds, cpu, yield_once=False)))
        yielding = _twice(lambda cpu=cpu: run(_slots(args.seconds, cpu, yield_once=True)))
        threaded = _twice(lambda cpu=cpu: _threads(args.seconds, cpu))
        print(f"  {cpu:>9.0f} us  {straight:>24}  {yielding:>20}  {threaded:>16}", flush=True)


if __name__ == "__main__":
    main()
