"""Chains without Redis: a test's capture (``run_jobs`` in ``capture_jobs``) and immediate mode follow the
engine's rules (``engine/lua/chains.py``) in this process: a step waits until all its parents completed and
then runs with their results; a parent that ended otherwise ends the steps after it without running them,
``failed`` ("fail") or ``aborted`` ("skip"), with the same error the engine writes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from saq.job import TERMINAL_STATUSES, Job, Status

from ..engine import chains


class Item(Protocol):
    job: Job


def failure_of(parent: Job) -> str:
    """Which parent ended how, as the engine says it: its task, key, status and the last line of its error."""
    status = Status(parent.status).value
    last = next((line.strip() for line in reversed((parent.error or "").splitlines()) if line.strip()), None)
    return f"parent step {parent.function} ({parent.key}) {f'{status}: {last}' if last else status}"


class HeldSteps[T: Item]:
    """The chain steps of one capture (or one immediate enqueue), by job key: ``hold`` each as it is
    recorded, ``ended`` each step that has ended; ``parent_results`` for a step about to run."""

    def __init__(self) -> None:
        self.steps: dict[str, T] = {}
        self.waiting: set[str] = set()

    def hold(self, item: T) -> bool:
        """Record ``item`` if it is a chain step; True if it waits for parents (it must not run yet)."""
        links = chains.of(item.job)
        if links is None:
            return False
        self.steps[item.job.key] = item
        if not links.get("parents"):
            return False
        item.job.status = Status.NEW
        self.waiting.add(item.job.key)
        return True

    def parent_results(self, item: T) -> list[Any] | None:
        """The results of ``item``'s parents in order (``[]`` for a first step), or None for a plain job."""
        links = chains.of(item.job)
        if links is None:
            return None
        return [self._job(key).result for _, key in links.get("parents", [])]

    def ended(self, item: T) -> tuple[list[T], list[T]]:
        """``item`` has ended: the steps now runnable (QUEUED), and those ended without running."""
        released: list[T] = []
        dropped: list[T] = []
        for _, key in (chains.of(item.job) or {}).get("children", []):
            if key not in self.waiting:
                continue
            child = self.steps[key]
            parents = [self._job(parent) for _, parent in chains.of(child.job)["parents"]]
            failed = next((p for p in parents if p.status in TERMINAL_STATUSES and p.status != Status.COMPLETE), None)
            if failed is None and any(p.status != Status.COMPLETE for p in parents):
                continue  # another parent has not ended yet
            self.waiting.discard(key)
            if failed is None:
                child.job.status = Status.QUEUED
                released.append(child)
                continue
            skip = chains.of(child.job).get("on_failure") == "skip"
            child.job.status = Status.ABORTED if skip else Status.FAILED
            child.job.error = ("skipped: " if skip else "not run: ") + failure_of(failed)
            dropped.append(child)
            more_released, more_dropped = self.ended(child)
            released += more_released
            dropped += more_dropped
        return released, dropped

    def _job(self, key: str) -> Job:
        return self.steps[key].job


def run_order[T: Item](items: Sequence[T]) -> tuple[HeldSteps[T], list[T]]:
    """Hold ``items`` (immediate mode): the held steps, and the items runnable now, in order."""
    held: HeldSteps[T] = HeldSteps()
    return held, [item for item in items if not held.hold(item)]
