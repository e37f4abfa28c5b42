"""A chain's built steps on their way to Redis: written in one script (``to_redis``), or carried by one outbox
row (``envelope``, opened again by the outbox's delivery: ``send``, or for a test's capture: ``diverted``).
Apart from ``chains.py`` so that the outbox can use it without importing the API that uses the outbox."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from saq.job import Job

from ..engine import chains as engine
from .building import BuiltJob
from .connections import get_queue


@dataclass(frozen=True)
class BuiltStep:
    """A step's validated job, its parents and children (indexes into the chain's steps) and its policy."""

    built: BuiltJob
    parents: tuple[int, ...]
    children: tuple[int, ...]
    on_failure: str


async def to_redis(steps: Sequence[BuiltStep]) -> list[Job]:
    jobs, _ = await engine.submit(
        [
            engine.StepJob(item.built.job, get_queue(item.built.queue), item.parents, item.children, item.on_failure)
            for item in steps
        ]
    )
    return jobs


# --- the outbox: one row carries the whole chain ------------------------------------------------------

# The meta entry of an outbox row's job that holds the whole chain (its first step is the row's job).
ENVELOPE = "chain_steps"


def envelope(steps: Sequence[BuiltStep]) -> BuiltJob:
    """The first step's job carrying every step (``meta[ENVELOPE]``): what one outbox row stores."""
    first = steps[0].built
    carrier = Job(**{**first.job.to_dict(), "queue": None})
    carrier.meta = {
        **carrier.meta,
        ENVELOPE: [
            {"queue": item.built.queue, "job": item.built.job.to_dict(), "parents": list(item.parents),
             "children": list(item.children), "on_failure": item.on_failure}
            for item in steps
        ],
    }  # fmt: skip
    return BuiltJob(queue=first.queue, job=carrier)


def opened(job: Job) -> list[BuiltStep] | None:
    """The steps an outbox row's job carries (``envelope``), or None for a plain job."""
    carried = job.meta.get(ENVELOPE) if job.meta else None
    if carried is None:
        return None
    return [
        BuiltStep(
            BuiltJob(queue=item["queue"], job=Job(**{**item["job"], "queue": None})),
            tuple(item["parents"]),
            tuple(item["children"]),
            item["on_failure"],
        )
        for item in carried
    ]


async def send(queue_jobs: Sequence[Job]) -> list[Job]:
    """The outbox's delivery: each chain a row carries written in its one script; returns the plain jobs left."""
    plain = []
    for job in queue_jobs:
        steps = opened(job)
        if steps is None:
            plain.append(job)
        else:
            await to_redis(steps)
    return plain


def diverted(built: Sequence[BuiltJob]) -> list[BuiltJob]:
    """``built`` with each chain an outbox row carries opened into its steps (for a test's capture)."""
    out: list[BuiltJob] = []
    for item in built:
        steps = opened(item.job)
        out += [step.built for step in steps] if steps is not None else [item]
    return out
