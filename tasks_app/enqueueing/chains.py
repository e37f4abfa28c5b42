"""Chains and groups: ``chain(step("a", x=1), step(b), step("c"))`` runs a, then b, then c;
``group(step("a", x=1), step("a", x=2)).then(step("c"))`` runs both a's, then c. A chain may hold groups
and a group chains ("A then B", "these N, then C"; not a DAG engine).

A ``step`` is validated as an enqueue is (unknown task, bad arguments: the same errors, at once). Each step
becomes a normal job; ``.enqueue()``, ``.aenqueue()`` and ``.enqueue_on_commit()`` write them all in one
Redis script (``engine/chains.py``), and a step runs once all its parents completed, with their results,
in order, as ``ctx["parent_results"]``. A parent that fails for good ends each step after it without
running it: ``failed`` (policy "fail", the default) or ``aborted`` (policy "skip"), its error naming the
parent and why. See docs/tasks-app/chains.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from saq.job import Job

from .. import conf
from ..engine import chains as engine
from ..exceptions import TaskArgumentError
from . import diversion, outbox
from .building import BuiltJob, TaskRef, build_job, split_options
from .chain_steps import BuiltStep, envelope, to_redis
from .connections import background, refuse_in_event_loop

__all__ = ["Chain", "Group", "Step", "chain", "group", "step"]

# The most steps one chain writes in one script: a chain is a handful of steps, not a batch (use
# enqueue_many for batches); this keeps one write from holding Redis for long.
MAX_STEPS = 1000
_NODES = "step(task, **kwargs), chain(...) or group(...)"


def _policy(on_failure: str | None, where: str) -> str | None:
    if on_failure is not None and on_failure not in engine.POLICIES:
        raise TaskArgumentError(
            f"{where}: on_failure={on_failure!r} is not a policy; use 'fail' (the steps after a failed one "
            "end failed, the default) or 'skip' (they end aborted, as skipped)."
        )
    return on_failure


@dataclass(frozen=True)
class Step:
    """One step: a registered task (by name or function), its keyword arguments and job options, the
    queue it runs on (default: its task's), and its own failure policy (default: its chain's)."""

    task: TaskRef
    kwargs: dict[str, Any]
    queue: str | None = None
    on_failure: str | None = None

    def build(self) -> BuiltJob:
        """Its job, validated as ``enqueue`` validates (raises ``TaskNotFound``, ``TaskArgumentError``)."""
        options, kwargs = split_options(dict(self.kwargs))
        return build_job(self.task, kwargs, queue=self.queue, **options)

    def then(self, *nodes: Node) -> Chain:
        return Chain((self, *map(_node, nodes)))


def step(task: TaskRef, /, *, queue: str | None = None, on_failure: str | None = None, **kwargs: Any) -> Step:
    """A step of a chain or group: ``task`` (a name or a ``@task`` function) called with ``kwargs``, which may
    hold job options (``timeout=``, ``retries=``, ...) as in ``enqueue``. Validated now: raises what
    ``enqueue`` raises for the same call."""
    made = Step(task, kwargs, queue, _policy(on_failure, "step()"))
    made.build()
    return made


class _Flow:
    """What a chain and a group share: ``then``, and the enqueue calls."""

    def then(self, *nodes: Node) -> Chain:
        """This, then ``nodes`` one after the other."""
        return Chain((self, *map(_node, nodes)))  # type: ignore[arg-type]

    def plan(self) -> list[Planned]:
        """Every step in an order where each comes after its parents."""
        planned: list[Planned] = []
        try:
            _plan(self, (), None, planned)  # type: ignore[arg-type]
        except RecursionError:  # chains nested thousands deep: a clear error, not Python's
            raise TaskArgumentError(
                f"This chain nests chains and groups too deeply; at most {MAX_STEPS} steps go in one."
            ) from None
        if len(planned) > MAX_STEPS:
            raise TaskArgumentError(f"This chain has {len(planned)} steps; at most {MAX_STEPS} go in one.")
        return planned

    def build(self) -> list[BuiltStep]:
        """The steps' jobs, validated and linked (fresh keys on every call)."""
        return build(self.plan())

    async def aenqueue(self) -> list[Job]:
        """Enqueue every step in one Redis write; returns the steps' jobs, parents before children (the last
        is the chain's last step). Raises what ``aenqueue`` raises."""
        return await submit(self.build())

    def enqueue(self) -> list[Job]:
        """The sync twin of ``aenqueue``; raises ``RuntimeError`` in a thread that runs an event loop."""
        refuse_in_event_loop(instead="await flow.aenqueue()")
        steps = self.build()
        if (target := diversion.current()) is not None:
            return target.take([item.built for item in steps])  # type: ignore[attr-defined]
        return background.run(to_redis(steps))

    def enqueue_on_commit(self, *, using: str | None = None) -> list[str]:
        """Enqueue every step once the current transaction on ``using`` commits, through the outbox (one row:
        delivered once, after commit; nothing on rollback). Returns the steps' keys now."""
        steps = self.build()
        outbox.on_commit(envelope(steps), using=using)
        return [item.built.job.key for item in steps]


@dataclass(frozen=True)
class Chain(_Flow):
    """Its nodes one after the other: each starts once the one before has completed."""

    nodes: tuple[Node, ...]
    on_failure: str | None = None


@dataclass(frozen=True)
class Group(_Flow):
    """Its nodes side by side: a node after the group starts once all of them completed."""

    nodes: tuple[Node, ...]


Node = Step | Chain | Group


def _node(node: Any) -> Node:
    if isinstance(node, (Step, Chain, Group)):
        return node
    raise TaskArgumentError(f"A chain or group holds {_NODES}, not {node!r}: wrap a task call as step(task, **kwargs).")


def chain(*nodes: Node, on_failure: str | None = None) -> Chain:
    """``nodes`` one after the other. ``on_failure``: what a step after a failed one does, unless it says
    itself: "fail" (default: it ends failed, without running) or "skip" (it ends aborted, as skipped)."""
    if not nodes:
        raise TaskArgumentError(f"chain() needs at least one of {_NODES}.")
    return Chain(tuple(map(_node, nodes)), _policy(on_failure, "chain()"))


def group(*nodes: Node) -> Group:
    """``nodes`` side by side; ``group(...).then(step(...))`` runs that step once all of them completed,
    with their results in this order."""
    if not nodes:
        raise TaskArgumentError(f"group() needs at least one of {_NODES}.")
    return Group(tuple(map(_node, nodes)))


# --- planning and building ------------------------------------------------------------------------


@dataclass
class Planned:
    step: Step
    parents: tuple[int, ...]
    on_failure: str
    children: list[int] = field(default_factory=list)


def _plan(node: Node, parents: tuple[int, ...], policy: str | None, out: list[Planned]) -> tuple[int, ...]:
    """Append ``node``'s steps to ``out`` after ``parents``; returns its last steps (its tails)."""
    if isinstance(node, Step):
        out.append(Planned(node, parents, node.on_failure or policy or "fail"))
        for parent in parents:
            out[parent].children.append(len(out) - 1)
        return (len(out) - 1,)
    if isinstance(node, Chain):
        tails = parents
        for inner in node.nodes:
            tails = _plan(inner, tails, node.on_failure or policy, out)
        return tails
    tails: tuple[int, ...] = ()
    for inner in node.nodes:
        tails += _plan(inner, parents, policy, out)
    return tails


def build(planned: Sequence[Planned]) -> list[BuiltStep]:
    """Build each step's job and write its links in its ``meta["chain"]``. Every step's queue must be on the
    same Redis (one script writes them all): raises ``TaskArgumentError`` naming them otherwise."""
    built = [item.step.build() for item in planned]
    urls = {item.queue: conf.queue_config(item.queue).url for item in built}
    if len(set(urls.values())) > 1:
        raise TaskArgumentError(
            f"The steps of one chain must be on queues of one Redis (one write enqueues them all); these are "
            f"not: {', '.join(f'{name} -> {url}' for name, url in sorted(urls.items()))}."
        )
    for item, made in zip(planned, built, strict=True):
        made.job.meta[engine.META] = {
            "parents": [[built[i].queue, built[i].job.key] for i in item.parents],
            "children": [[built[i].queue, built[i].job.key] for i in item.children],
            "on_failure": item.on_failure,
        }
    return [
        BuiltStep(made, item.parents, tuple(item.children), item.on_failure)
        for item, made in zip(planned, built, strict=True)
    ]


# --- submission ------------------------------------------------------------------------------------


async def submit(steps: Sequence[BuiltStep]) -> list[Job]:
    """Write ``steps`` to Redis in one script, or hand them to a test's capture or immediate mode."""
    if (target := diversion.current()) is not None:
        return await target.atake([item.built for item in steps])
    return await to_redis(steps)
