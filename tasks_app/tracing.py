"""OpenTelemetry traces from an enqueue to the job's run, when the application uses ``opentelemetry-api``.

- ``build_job`` (every enqueue) opens a PRODUCER span ``send <queue>`` as a child of whatever span is
  current (a web request's, say) and stores its W3C context in ``job.meta["otel"]`` (``traceparent``,
  and ``tracestate`` when there is one), through the globally configured propagator;
- each attempt (a worker's, or an inline run's) runs inside a CONSUMER span ``process <queue>`` linked
  to that producer span (a link, not a parent: a run may come hours later, in a trace of its own, and a
  retried job links every attempt to the same enqueue). The task's own spans are its children.

Attributes follow OpenTelemetry's messaging conventions where they fit: ``messaging.system`` ("saq"),
``messaging.destination.name`` (the queue), ``messaging.message.id`` (the job key),
``messaging.operation.type`` ("send" or "process"); and ``tasks_app.task``, ``tasks_app.attempt``,
``tasks_app.outcome`` (the worker's outcome names: complete, failed, retrying, ...).

This module never imports OpenTelemetry itself until it is in use: an application that configures a
tracer provider has imported ``opentelemetry.trace`` to do it, so ``active()`` looks in ``sys.modules``
(one dict lookup and one attribute read per enqueue and per attempt). Not installed, or installed but
not configured: nothing of it is imported by tasks_app and no span is made.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

META_KEY = "otel"  # job.meta[META_KEY]: the producer span's context, {"traceparent": ..., ...}
SYSTEM = "saq"
# Outcomes that end the consumer span with an error status.
ERROR_OUTCOMES = frozenset({"failed", "timeout", "retrying", "timeout-retrying", "lost"})

# The provider the tracer came from, and the tracer: one per provider, should it be replaced. The
# provider itself is held and compared, not its id(): a replaced provider, once collected, may leave
# its id to the next one, which would then get the old provider's tracer (shut down, exporting nothing).
_tracer: tuple[Any, Any] | None = None


def active() -> bool:
    """Whether the application has set a tracer provider (``trace.set_tracer_provider``, or
    ``opentelemetry-instrument``), so that spans would be recorded somewhere."""
    api = sys.modules.get("opentelemetry.trace")
    if api is None:
        return False
    provider = getattr(api, "_TRACER_PROVIDER", None)  # the global that set_tracer_provider sets
    return provider is not None and not isinstance(provider, (api.ProxyTracerProvider, api.NoOpTracerProvider))


def _get_tracer() -> Any:
    from opentelemetry import trace

    global _tracer
    provider = trace.get_tracer_provider()
    if _tracer is None or _tracer[0] is not provider:
        _tracer = (provider, provider.get_tracer("tasks_app"))
    return _tracer[1]


def start_producer(job: Any, queue: str) -> None:
    """Record a PRODUCER span for the enqueue of ``job`` (a ``saq.Job`` not yet sent) to ``queue`` and
    store its context in ``job.meta[META_KEY]``. Callers check ``active()`` first."""
    from opentelemetry import propagate
    from opentelemetry.trace import SpanKind

    attributes = {
        "messaging.system": SYSTEM,
        "messaging.destination.name": queue,
        "messaging.message.id": job.key,
        "messaging.operation.type": "send",
        "tasks_app.task": job.function,
    }
    with _get_tracer().start_as_current_span(f"send {queue}", kind=SpanKind.PRODUCER, attributes=attributes):
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
    if carrier:
        job.meta[META_KEY] = carrier


@contextmanager
def consumer_span(job: Any, queue: str | None, ctx: dict[str, Any]) -> Iterator[None]:
    """Run an attempt of ``job`` inside a CONSUMER span linked to its producer span (if it has one);
    its outcome is read from ``ctx["outcome"]`` when the attempt is over (missing: "lost").
    Callers check ``active()`` first, so that the common case does not even enter this."""
    from opentelemetry import propagate, trace
    from opentelemetry.trace import Link, SpanKind, Status, StatusCode

    carrier = job.meta.get(META_KEY) if job.meta else None
    links = []
    if carrier:
        producer = trace.get_current_span(propagate.extract(carrier)).get_span_context()
        if producer.is_valid:
            links.append(Link(producer))
    name = queue or "inline"
    attributes = {
        "messaging.system": SYSTEM,
        "messaging.destination.name": name,
        "messaging.message.id": job.key,
        "messaging.operation.type": "process",
        "tasks_app.task": job.function,
        "tasks_app.attempt": job.attempts,
    }
    with _get_tracer().start_as_current_span(
        f"process {name}", kind=SpanKind.CONSUMER, links=links, attributes=attributes, record_exception=False
    ) as span:
        try:
            yield
        finally:
            outcome = ctx.get("outcome", "lost")
            span.set_attribute("tasks_app.outcome", outcome)
            if outcome in ERROR_OUTCOMES:
                failure = ctx.get("exception")
                if failure is not None:
                    span.record_exception(failure)
                span.set_status(Status(StatusCode.ERROR, outcome))
