"""The printed figures of ``bench/peers.py``: medians over the rounds, tables, and the targets' verdicts."""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable, Sequence

from bench.peer_runs import Enqueued, Runs, Workload


def median(values: Sequence[float | None] | None) -> float | None:
    valid = [v for v in values or () if v is not None]
    return statistics.median(valid) if valid else None


def summary(values: Sequence[float | None], fmt: str = "{:,.0f}") -> str:
    """``median [min-max]``, and how many runs were void."""
    valid = [v for v in values if v is not None]
    if not valid:
        return "void" if values else "-"
    text = f"{fmt.format(statistics.median(valid))} [{fmt.format(min(valid))}-{fmt.format(max(valid))}]"
    return text + (f" ({len(values) - len(valid)} void)" if len(valid) < len(values) else "")


def print_table(columns: Sequence[str], rows: Sequence[tuple[str, Sequence[str]]]) -> None:
    """Rows of right-aligned cells under their columns, each row led by its label."""
    first = max(len(label) for label, _ in rows)
    widths = [max(len(column), *(len(cells[i]) for _, cells in rows)) for i, column in enumerate(columns)]
    print("  " + " " * first + "".join(f"  {column:>{w}}" for column, w in zip(columns, widths, strict=True)))
    for label, cells in rows:
        print(f"  {label:<{first}}" + "".join(f"  {cell:>{w}}" for cell, w in zip(cells, widths, strict=True)))


def target_line(name: str, ours: float | None, reference: float | None, factor: float, what: str) -> str:
    """``ours / reference`` against ``factor``: MET, MISSED, or n/a when a side did not run or was void."""
    if ours is None or reference is None:
        return f"  {name}: n/a ({what} not run, or void)"
    ratio = ours / reference
    verdict = "MET" if ratio >= factor else "MISSED"
    return f"  {name}: {ours:,.0f} / {reference:,.0f} ({what}) = {ratio:.2f}x, target >= {factor:.2f}x  {verdict}"


def report(args: argparse.Namespace, workloads: list[Workload], runs: Runs, enqueued: Enqueued) -> None:
    def rate(key: str, system: str) -> float | None:
        return median([r.rate if r else None for r in runs.get((key, system), [])])

    def results(workload: Workload, system: str, field: str) -> list[float | None]:
        return [getattr(r, field) if r else None for r in runs.get((workload.key, system), [])]

    def section(title: str, cell: Callable[[Workload, str], str]) -> None:
        """One table per group of workloads that share their systems (the peers; runworker's process counts)."""
        print(f"\n{title}")
        for group in (peers, processes):
            if group:
                columns = [system.name for system in group[0].systems]
                print_table(columns, [(w.title, [cell(w, s) for s in columns]) for w in group])

    def cpu(workload: Workload, system: str) -> str:
        worker = median(results(workload, system, "worker_cpu_us"))
        server = median(results(workload, system, "redis_cpu_us"))
        return "-" if worker is None or server is None else f"{worker:,.0f} + {server:,.0f}"

    rounds = f"median [min-max] of {args.rounds} round{'s' * (args.rounds > 1)}"
    peers = [w for w in workloads if w.key != "workers2"]
    processes = [w for w in workloads if w.key == "workers2"]
    startups: dict[str, list[float | None]] = {}
    if workloads:
        section(
            f"Throughput, jobs/s ({rounds}): N / (last job end - first job start)",
            lambda w, s: summary(results(w, s, "rate")),
        )
        for (_, system), outcomes in runs.items():
            startups.setdefault(system, []).extend(r.startup for r in outcomes if r)
        print("\nStart-up, s (median [min-max] over every run): process spawn -> first job start")
        print_table(["start-up"], [(name, [summary(values, "{:.2f}")]) for name, values in startups.items()])
        section("CPU per job, us (medians): worker processes + redis-server, from the first jobs done to the last", cpu)
    if args.mark_all and workloads:
        section(
            "--mark-all: rate from the usual marks / rate from every job's times - 1 (the worst round)",
            lambda w, s: f"{max(results(w, s, 'estimate_error'), key=lambda e: abs(e or 0), default=0) or 0:+.2%}",
        )
        section(
            "--mark-all: a slot's time between jobs, ms: from a job's end to the next start in its slot (median)",
            lambda w, s: summary(results(w, s, "gap_ms"), "{:.2f}"),
        )
    if enqueued:
        print(f"\nEnqueueing no-op jobs into an empty Redis, jobs/s ({rounds})")
        print_table(
            ["jobs/s"],
            [(f"{name}, {count:,} jobs", [summary(values)]) for (count, name), values in enqueued.items()],
        )

    print("\nTargets (ratios of the medians)")
    lines = []
    if any(w.key == "io10" for w in workloads):
        ours = rate("io10", "runworker")
        lines.append(target_line("20 ms I/O, c=10: runworker vs 485 jobs/s", ours, 485, 1.0, "97% of the 500 ceiling"))
        lines.append(target_line("20 ms I/O, c=10: runworker vs huey", ours, rate("io10", "huey"), 1.03, "huey"))
    if "runworker" in startups:
        start = median(startups["runworker"])
        verdict = "n/a" if start is None else f"{start:.2f} s, target <= 1.00 s  {'MET' if start <= 1.0 else 'MISSED'}"
        lines.append(f"  start-up (spawn -> first job start): runworker {verdict}")
    for key, factor, title in (("noop", 1.3, "no-op, c=10"), ("io200", 1.5, "20 ms I/O, c=200")):
        if any(w.key == key for w in workloads):
            ran = [s for s in ("huey", "dramatiq") if rate(key, s) is not None]
            best = max(ran, key=lambda s: rate(key, s) or 0) if ran else None
            what = (best or "huey, dramatiq") + ("" if len(ran) == 2 else " only: the other did not run or was void")
            name = f"{title}: runworker vs the faster of huey and dramatiq"
            lines.append(target_line(name, rate(key, "runworker"), rate(key, best) if best else None, factor, what))
    for count in args.enqueue_jobs if enqueued else ():
        theirs = median(enqueued.get((count, "rq enqueue_many")))
        for name, factor in (("tasks_app enqueue_many", 2.0), ("tasks_app aenqueue_many", 1.0)):
            ours = median(enqueued.get((count, name)))
            lines.append(target_line(f"enqueue {count:,}: {name} vs rq", ours, theirs, factor, "rq enqueue_many"))
    if enqueued:
        one = args.enqueue_one_jobs
        ours = median(enqueued.get((one, "tasks_app enqueue (sync, one at a time)")))
        theirs = median(enqueued.get((one, "huey (sync, one at a time)")))
        lines.append(target_line("sync enqueue, one at a time: tasks_app enqueue vs huey", ours, theirs, 1.0, "huey"))
    for workload in peers if "runworker-base" in args.only and "runworker" in args.only else ():
        ours, base = rate(workload.key, "runworker"), rate(workload.key, "runworker-base")
        lines.append(target_line(f"{workload.title}: runworker vs runworker-base, jobs/s", ours, base, 0.95, "base"))
        cpus = [median(results(workload, s, "worker_cpu_us")) for s in ("runworker", "runworker-base")]
        servers = [median(results(workload, s, "redis_cpu_us")) for s in ("runworker", "runworker-base")]
        if None not in cpus and None not in servers:
            ours_cpu, base_cpu = cpus[0] + servers[0], cpus[1] + servers[1]
            lines.append(
                f"  {workload.title}: CPU per job (worker + redis-server) {ours_cpu:,.0f} us vs runworker-base "
                f"{base_cpu:,.0f} us = {ours_cpu / base_cpu:.2f}x, target <= 1.05x  "
                f"{'MET' if ours_cpu <= 1.05 * base_cpu else 'MISSED'}"
            )
    if processes:
        two, one = rate("workers2", "runworker --workers 2"), rate("workers2", "runworker --workers 1")
        lines.append(target_line("no-op: runworker --workers 2 vs --workers 1", two, one, 1.6, "one process"))
    print("\n".join(lines) if lines else "  (none of the targets' workloads ran)")

    print("\nRaw, per round: jobs/s (start-up s)")
    for (key, system), outcomes in runs.items():
        cells = [f"{r.rate:,.0f} ({r.startup:.2f})" if r else "void" for r in outcomes]
        print(f"  {key:<8} {system:<21}", "  ".join(cells))
    for (count, name), values in enqueued.items():
        print(f"  enqueue  {name:<33} {count:>6,}:", "  ".join(f"{v:,.0f}" for v in values))
