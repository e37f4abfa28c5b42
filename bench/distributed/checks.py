"""The checker: what became of every acknowledged job of a phase, from the queue and the ledger.

Per phase (one fault), over the jobs the load acknowledged while it lasted:

- ``lost``: acknowledged, and no record of the job in Redis after the drain (must be 0);
- ``not terminal``: its record is not complete, failed or aborted after the drain (must be 0);
- ``double terminal``: more than one terminal write accepted for one job (two executions each recorded
  an accepted outcome, or the stored status is not the one accepted outcome) (must be 0). A key
  enqueued again after its job ended (the outbox delivering a row again) is a new job (``instances``);
- ``extra executions``: executions beyond one per job, cron runs included; each is explained when
  the execution before it was retried after an error, stopped cleanly, or was running on a worker
  that a fault hit while it ran (killed, paused, cut off; any worker for the primary's death);
- ``first completion``: from the fault to the first accepted terminal write of a job acknowledged
  after it (ledger clock), in seconds;
- ``invariants``: the problems ``check_consistency()`` finds in the whole queue (must be 0), in two
  passes a second apart (a problem must be in both: the workers keep writing cron runs meanwhile).
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from collections import Counter
from dataclasses import dataclass, field

from saq.job import TERMINAL_STATUSES

from .ledger import TERMINAL_OUTCOMES, Execution, Ledger
from .load import Phase


@dataclass(frozen=True)
class FaultWindow:
    """A fault on the ledger's clock: it hit ``pids`` (None: every worker) from ``start_ms`` to ``end_ms``."""

    name: str
    start_ms: int
    end_ms: int
    pids: frozenset[int] | None

    def hit(self, execution: Execution) -> bool:
        if self.pids is not None and execution.pid not in self.pids:
            return False
        ended = execution.ended_ms if execution.ended_ms is not None else float("inf")
        return execution.held_from_ms <= self.end_ms and ended >= self.start_ms


@dataclass
class Row:
    fault: str
    acked: int = 0
    refused: int = 0
    lost: int = 0
    not_terminal: int = 0
    double_terminal: int = 0
    extra: int = 0
    explained: Counter[str] = field(default_factory=Counter)
    first_completion_s: float | None = None
    invariants: int = 0
    examples: list[str] = field(default_factory=list)

    @property
    def unexplained(self) -> int:
        return self.extra - sum(self.explained.values())

    @property
    def ok(self) -> bool:
        return not (self.lost or self.not_terminal or self.double_terminal or self.unexplained or self.invariants)

    def note(self, text: str) -> None:
        if len(self.examples) < 5:
            self.examples.append(text)


def as_dict(row: Row) -> dict:
    """``row`` as plain data: its fields, ``unexplained`` and ``ok``."""
    return {**dataclasses.asdict(row), "explained": dict(row.explained), "unexplained": row.unexplained, "ok": row.ok}


def explain(before: Execution, windows: list[FaultWindow]) -> str | None:
    """Why a job ran again after ``before``: a reason, or None (unexplained)."""
    if before.outcome in ("retrying", "timeout-retrying"):
        return "retry"
    if before.outcome == "requeued":
        return "clean stop"
    for window in windows:
        if window.hit(before):
            return window.name
    return None


def instances(runs: list[Execution]) -> list[list[Execution]]:
    """``runs`` of one key split into jobs: a first attempt taken after a terminal write was accepted is
    a new job under the same key (enqueued again once the other had ended). Taken, not started: a worker
    paused between its take and its start starts a first attempt late, after the job ended elsewhere,
    and that is the same job run once more (explained by the pause), not a new one."""
    jobs: list[list[Execution]] = []
    for run in runs:
        ended = jobs and any(r.outcome in TERMINAL_OUTCOMES and (r.ended_ms or 0) <= run.held_from_ms for r in jobs[-1])
        if not jobs or (ended and run.attempt == 1):
            jobs.append([run])
        else:
            jobs[-1].append(run)
    return jobs


async def stored_jobs(queue, keys: list[str]) -> dict[str, object]:
    jobs: dict[str, object] = {}
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        for key, job in zip(chunk, await queue.jobs(chunk), strict=True):
            jobs[key] = job
    return jobs


async def check_phase(
    queue, phase: Phase, ledger: Ledger, windows: list[FaultWindow], fault_ms: int, fault_at: float,
    window_ms: tuple[int, int],
) -> Row:  # fmt: skip
    """The row of ``phase``: ``fault_ms`` is the fault's time on the ledger's clock, ``fault_at`` on the
    harness's monotonic clock (for the acknowledgements); ``window_ms`` the phase's span (its cron runs)."""
    from tasks_app.engine.sweeping import check_consistency

    row = Row(phase.name, refused=sum(phase.refused.values()))
    keys = sorted({ack.key for ack in phase.acked})
    row.acked = len(keys)
    stored = await stored_jobs(queue, keys)
    cron = [k for k, runs in ledger.executions.items() if "@" in k and window_ms[0] <= runs[0].at_ms < window_ms[1]]
    for key in keys + cron:
        runs = ledger.executions.get(key, [])
        if key in stored:
            job = stored[key]
            if job is None:
                row.lost += 1
                row.note(f"lost: {key} ({len(runs)} executions recorded)")
                continue
            if job.status not in TERMINAL_STATUSES:
                row.not_terminal += 1
                row.note(f"not terminal: {key} is {job.status.value}")
        final = getattr(stored.get(key), "status", None)
        jobs = instances(runs)
        if len(jobs) > 1:
            # The same key enqueued again after its job had ended: the outbox delivering a row again whose
            # first delivery's record is gone (a failover lost it before a replica had it).
            row.extra += len(jobs) - 1
            row.explained["outbox redelivery"] += len(jobs) - 1
            for earlier, later in itertools.pairwise(jobs):
                ended = max((r.ended_ms or 0 for r in earlier if r.outcome in TERMINAL_OUTCOMES), default=None)
                first = later[0]
                row.note(
                    f"new job of {key}: attempt {first.attempt} on {first.host} pid {first.pid} started at "
                    f"{first.at_ms}, taken at {first.taken_ms}, after the last ended at {ended}"
                )
        for number, job_runs in enumerate(jobs, 1):
            accepted = [run for run in job_runs if run.outcome in TERMINAL_OUTCOMES]
            last = number == len(jobs)
            if len(accepted) > 1 or (
                last and accepted and final is not None and _status(accepted[0].outcome) != final.value
            ):
                row.double_terminal += 1
                row.note(f"double terminal: {key}: {[r.outcome for r in accepted]}, stored {final}")
            if len(job_runs) > 1:
                # Each execution beyond the first needs one that did not end the job, for a reason.
                row.extra += len(job_runs) - 1
                interrupted = [run for run in job_runs if run.outcome not in TERMINAL_OUTCOMES]
                reasons = sorted((explain(run, windows) for run in interrupted), key=lambda r: r is None)
                for reason in reasons[: len(job_runs) - 1]:
                    if reason is not None:
                        row.explained[reason] += 1
                if row.unexplained and len(row.examples) < 5:
                    runs_text = ", ".join(
                        f"{r.outcome} (attempt {r.attempt}) on {r.host} pid {r.pid}" for r in job_runs
                    )
                    row.note(f"unexplained re-run of {key}: {runs_text}")
    after = [ack.key for ack in phase.acked if ack.at >= fault_at]
    first = ledger.first_terminal_after(fault_ms, after)
    row.first_completion_s = None if first is None else (first - fault_ms) / 1000
    # Twice, a second apart, keeping what both find: the workers go on (cron), and a job written between
    # the scan of the lists and the scan of the records (a cron run's next one) is not a broken invariant.
    first_report = await check_consistency(queue)
    await asyncio.sleep(1)
    second_report = await check_consistency(queue)
    report = {problem: sorted(set(keys) & set(second_report[problem])) for problem, keys in first_report.items()}
    row.invariants = sum(map(len, report.values()))
    for problem, bad in report.items():
        for key in bad[:2]:
            row.note(f"check_consistency {problem}: {key}")
    return row


def _status(outcome: str) -> str:
    return {"timeout": "failed"}.get(outcome, outcome)


async def drain(queue, keys: list[str], timeout: float) -> float:  # noqa: ASYNC109 (a deadline, not a cancel)
    """Wait until every one of ``keys`` that exists is terminal, and none is queued or active;
    returns the seconds it took (``timeout`` if it never did)."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    pending = list(keys)
    while pending and loop.time() - started < timeout:
        try:
            jobs = await stored_jobs(queue, pending)
        except Exception:  # the queue's Redis is failing over: ask again
            await asyncio.sleep(0.5)
            continue
        pending = [k for k, job in jobs.items() if job is not None and job.status not in TERMINAL_STATUSES]
        if pending:
            await asyncio.sleep(0.5)
    return loop.time() - started


HEADER = ("fault", "acked", "refused", "lost", "not terminal", "double terminal", "extra runs (why)",
          "first completion", "invariants", "ok")  # fmt: skip


def table(rows: list[Row]) -> str:
    """The rows as a plain-text table, one line per fault."""
    lines = [HEADER]
    for row in rows:
        why = ", ".join(f"{n} {reason}" for reason, n in sorted(row.explained.items()))
        if row.unexplained:
            why = ", ".join(filter(None, [why, f"{row.unexplained} UNEXPLAINED"]))
        first = "-" if row.first_completion_s is None else f"{row.first_completion_s:.1f}s"
        lines.append((row.fault, str(row.acked), str(row.refused), str(row.lost), str(row.not_terminal),
                      str(row.double_terminal), f"{row.extra}" + (f" ({why})" if why else ""), first,
                      str(row.invariants), "yes" if row.ok else "NO"))  # fmt: skip
    widths = [max(len(line[i]) for line in lines) for i in range(len(HEADER))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)) for line in lines)
