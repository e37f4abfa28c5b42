"""Where the time of one sync enqueue goes, and what a 20 ms job at concurrency 10 can reach: the
profiles behind ``bench/peers.py``'s enqueue and ``io10`` figures.

    uv run python -m bench.peer_costs                 # about a minute
    uv run python -m bench.peer_costs --calls 5000 --rounds 3

1. **One enqueue at a time from sync code**, per call (medians over ``--rounds``, the ways taken in
   turns): wall time, this process's CPU (``time.process_time``) and redis-server's CPU (``INFO cpu``,
   a server of the benchmark's own, so nothing else counts), for tasks_app's ``enqueue``, huey's task
   call, and a bare redis-py ``PING`` (the floor of one round trip through redis-py).
2. **The enqueue script alone**, redis-server's CPU per call with ``--calls`` calls in one pipeline (no
   per-request socket work): the script as it is (a fresh job takes its first branch), its general path
   alone (as before that branch), a script that only returns, and huey's ``LPUSH``.
3. **The I/O ceiling**: 10 coroutines each awaiting ``asyncio.sleep(0.02)`` ``--sleeps`` times, nothing
   else, on asyncio's loop and on uvloop: what any async worker's ``io10`` figure is bounded by on this
   machine (the 500 jobs/s of 10 x 50 is the ceiling of exact sleeps).
4. **The finish-and-take script alone** (a worker's one round trip per job): redis-server's time per call
   (``INFO commandstats``), one call at a time through the engine (``attempts.take``, then
   ``end_attempt(take_next=True)`` for each job it hands back), as it is (its first branch takes these
   calls) and its general path alone, and what the general path's pieces cost, each measured by running it
   ten times more per call (five for the helper definitions) and dividing the difference.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.peer_setup import start_redis

Way = tuple[str, Callable[[], object]]


def setup(url: str) -> None:
    """Django on ``bench.settings`` pointed at the benchmark's Redis (no database is used: none is made)."""
    os.environ.update(DJANGO_SETTINGS_MODULE="bench.settings", BENCH_REDIS_URL=url, TEST_REDIS_URL=url,
                      PEERS_PROBE_URL=url)  # fmt: skip
    import django

    django.setup()


def one_at_a_time(client, calls: int, rounds: int) -> None:
    from bench.peer_jobs import huey_app
    from tasks_app import enqueue

    ways: list[Way] = [
        ("tasks_app enqueue", lambda: enqueue("peer_noop", mark=0)),
        ("huey task call", lambda: huey_app.peer_noop(mark=0)),
        ("redis-py PING", client.ping),
    ]
    figures: dict[str, list[tuple[float, float, float]]] = {}
    for _, call in ways:  # connections opened, scripts loaded
        call()
    for _ in range(rounds):
        for name, call in ways:
            client.flushdb()
            server, cpu, wall = server_cpu(client), time.process_time(), time.perf_counter()
            for _ in range(calls):
                call()
            wall, cpu, server = time.perf_counter() - wall, time.process_time() - cpu, server_cpu(client) - server
            figures.setdefault(name, []).append((wall / calls * 1e6, cpu / calls * 1e6, server / calls * 1e6))
    client.flushdb()
    print(f"\n1. One call at a time, {calls:,} calls, median of {rounds} rounds (us per call)")
    print(f"  {'':20} {'wall':>7} {'this process CPU':>17} {'redis-server CPU':>17} {'jobs/s':>8}")
    for name, rows in figures.items():
        wall, cpu, server = (statistics.median(row[i] for row in rows) for i in range(3))
        print(f"  {name:20} {wall:7.1f} {cpu:17.1f} {server:17.1f} {1e6 / wall:8,.0f}")


def server_cpu(client) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def script_alone(client, calls: int, rounds: int) -> None:
    from saq.job import Job, Status

    from tasks_app.engine import storage
    from tasks_app.engine.lua.records import _FAST_ENQUEUE, ENQUEUE

    scripts = {
        "enqueue script": client.script_load(ENQUEUE),
        "its general path alone": client.script_load(ENQUEUE[len(_FAST_ENQUEUE) :]),
        "a script that returns": client.script_load("return 1"),
    }
    payload = storage.serialize(Job("peer_noop", kwargs={"mark": 0}, key="KEY", status=Status.QUEUED))
    figures: dict[str, list[float]] = {}
    for _ in range(rounds):
        for name, sha in [*scripts.items(), ("huey's LPUSH", None)]:
            client.flushdb()
            pipe = client.pipeline(transaction=False)
            for i in range(calls):
                key = f"saq:job:default:k{i}"
                if sha is None:
                    pipe.lpush("huey.redis.peers", payload)
                else:
                    pipe.evalsha(sha, 4, key, "saq:default:incomplete", "saq:default:queued",
                                 f"saq:default:successor:k{i}", payload.replace("KEY", f"k{i}"), 0, 0.0)  # fmt: skip
            before = server_cpu(client)
            pipe.execute()
            figures.setdefault(name, []).append((server_cpu(client) - before) / calls * 1e6)
    client.flushdb()
    print(f"\n2. redis-server CPU per call, {calls:,} calls in one pipeline, median of {rounds} rounds (us)")
    for name, values in figures.items():
        print(f"  {name:24} {statistics.median(values):6.1f}")


async def sleepers(sleeps: int, slots: int = 10) -> float:
    left = sleeps

    async def slot() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await asyncio.sleep(0.02)

    started = time.perf_counter()
    await asyncio.gather(*(slot() for _ in range(slots)))
    return sleeps / (time.perf_counter() - started)


def io_ceiling(sleeps: int, rounds: int) -> None:
    import uvloop

    figures: dict[str, list[float]] = {}
    for _ in range(rounds):
        figures.setdefault("asyncio", []).append(asyncio.run(sleepers(sleeps)))
        figures.setdefault("uvloop", []).append(uvloop.run(sleepers(sleeps)))
    print(f"\n3. 10 coroutines awaiting asyncio.sleep(0.02), {sleeps:,} sleeps, nothing else (sleeps/s, median "
          f"of {rounds}; exact sleeps would give 500)")  # fmt: skip
    for name, values in figures.items():
        print(f"  {name:8} {statistics.median(values):6.0f}  [{min(values):.0f}-{max(values):.0f}]")


async def finish_and_take_alone(client, url: str, rounds: int, jobs: int = 2_000) -> None:
    from redis.asyncio import Redis
    from saq.job import Status

    from tasks_app import aenqueue_many
    from tasks_app.engine import attempts
    from tasks_app.engine.lua import attempts as scripts
    from tasks_app.engine.queue import AtomicRedisQueue

    source = scripts.FINISH_AND_TAKE
    general = source.replace(scripts._FIRST_BRANCH, "", 1)  # as it was before its first branch
    call = "local now = FAST_NOW or clock()\n"  # where the general path's work starts, its helpers defined
    if general == source or general.count(call) != 1:
        sys.exit("section 4 no longer finds where FINISH_AND_TAKE's work starts: update finish_and_take_alone")
    helpers, work = general.split(call)
    pieces = {  # name: (Lua run that many more times per call, times)
        "a header read (read)": ("for _ = 1, 10 do read(ARGV[1]) end\n", 10),
        "a header stamp (stamp)": ("for _ = 1, 10 do stamp(ARGV[1], {completed = now}) end\n", 10),
        "Redis's clock (clock)": ("for _ = 1, 10 do clock() end\n", 10),
        "a redis.call (EXISTS)": ("for _ = 1, 10 do redis.call('EXISTS', KEYS[6]) end\n", 10),
    }
    variants = {"as it is": source, "its general path alone": general}
    variants.update({name: helpers + call + lua + work for name, (lua, _) in pieces.items()})
    variants["the helper definitions"] = f"do\n{helpers}\nend\n" * 5 + general
    times: dict[str, list[float]] = {}
    try:
        for _ in range(rounds):
            for name, lua in variants.items():
                scripts.FINISH_AND_TAKE = lua  # read when a queue registers its scripts
                client.flushdb()
                await aenqueue_many("peer_noop", [{"mark": 0}] * (jobs + 1))
                queue = AtomicRedisQueue(Redis.from_url(url), name="default")
                job = await attempts.take(queue, "bench-worker")
                client.config_resetstat()
                while job is not None:
                    job = await attempts.end_attempt(queue, job, Status.COMPLETE, take_next=True)
                stats = client.info("commandstats")["cmdstat_evalsha"]
                times.setdefault(name, []).append(stats["usec"] / stats["calls"])
                await queue.disconnect()
    finally:
        scripts.FINISH_AND_TAKE = source
    client.flushdb()
    whole, base = statistics.median(times.pop("as it is")), statistics.median(times.pop("its general path alone"))
    print(f"\n4. The finish-and-take script alone, {jobs:,} calls one at a time, median of {rounds} rounds (us)")
    print(f"  redis-server's time per call    {whole:6.1f}")
    print(f"  its general path alone          {base:6.1f}  (what each piece below costs it)")
    for name, values in times.items():
        repeats = pieces[name][1] if name in pieces else 5
        print(f"  {name:32}{(statistics.median(values) - base) / repeats:6.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=20_000, help="enqueues per way and round (default 20,000)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds (default 5)")
    parser.add_argument("--sleeps", type=int, default=3_000, help="sleeps per I/O ceiling run (default 3,000)")
    args = parser.parse_args()
    with ExitStack() as stack:
        server = start_redis(stack)
        setup(server.url)
        import redis

        client = redis.Redis.from_url(server.url)
        print(f"Python {sys.version.split()[0]}; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; "
              f"Redis {client.info('server')['redis_version']} of the benchmark's own")  # fmt: skip
        one_at_a_time(client, args.calls, args.rounds)
        script_alone(client, args.calls, args.rounds)
        io_ceiling(args.sleeps, args.rounds)
        asyncio.run(finish_and_take_alone(client, server.url, args.rounds))
        client.close()
    print(f"\nload average now {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
