"""OpenTelemetry traces: the enqueue's PRODUCER span is linked to the CONSUMER span of the job's run
by a real worker; without a configured provider, or without the package, nothing changes."""

import json
import subprocess
import sys

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from opentelemetry.util._once import Once
from saq.job import Status

from tasks_app import enqueue, tracing
from tasks_app.testing import capture_jobs, run_jobs
from tests.queue_state import stored

from .helpers import ROOT, run_burst

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def spans():
    """An SDK tracer provider with an in-memory exporter, set globally for the test and taken away after
    (OpenTelemetry sets its global provider once per process: the test resets that, as its own tests do)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    yield exporter
    provider.shutdown()
    trace._TRACER_PROVIDER_SET_ONCE = Once()
    trace._TRACER_PROVIDER = None


def test_the_run_by_a_worker_is_linked_to_the_enqueue(spans, redis_db):
    tracer = trace.get_tracer("a web request")
    with tracer.start_as_current_span("GET /feeds/") as request:
        job = enqueue("fails_after_progress")
    run_burst()
    assert stored(job.key).status == Status.FAILED
    [producer] = [s for s in spans.get_finished_spans() if s.kind == SpanKind.PRODUCER]
    [consumer] = [s for s in spans.get_finished_spans() if s.kind == SpanKind.CONSUMER]
    assert producer.name == "send default"
    assert producer.parent.span_id == request.get_span_context().span_id  # the request's child
    assert stored(job.key).meta["otel"]["traceparent"].split("-")[2] == f"{producer.context.span_id:016x}"
    assert [link.context.span_id for link in consumer.links] == [producer.context.span_id]
    assert consumer.name == "process default"
    assert dict(consumer.attributes) == {
        "messaging.system": "saq",
        "messaging.destination.name": "default",
        "messaging.message.id": job.key,
        "messaging.operation.type": "process",
        "tasks_app.task": "fails_after_progress",
        "tasks_app.attempt": 1,
        "tasks_app.outcome": "failed",
    }
    assert consumer.status.status_code == StatusCode.ERROR
    assert producer.attributes["messaging.message.id"] == job.key


def test_each_attempt_is_a_span_linked_to_the_one_enqueue(spans):
    with capture_jobs() as jobs:
        enqueue("fails_for_good")
        run_jobs()
    [producer] = [s for s in spans.get_finished_spans() if s.kind == SpanKind.PRODUCER]
    consumers = [s for s in spans.get_finished_spans() if s.kind == SpanKind.CONSUMER]
    assert [(s.attributes["tasks_app.attempt"], s.attributes["tasks_app.outcome"]) for s in consumers] == [
        (1, "retrying"),
        (2, "failed"),
    ]
    assert all(s.links[0].context.span_id == producer.context.span_id for s in consumers)
    assert jobs[0].job.status == Status.FAILED


def test_a_span_started_by_the_task_is_a_child_of_the_run(spans):
    with capture_jobs():
        enqueue("traced_child")
        run_jobs()
    [consumer] = [s for s in spans.get_finished_spans() if s.kind == SpanKind.CONSUMER]
    [child] = [s for s in spans.get_finished_spans() if s.name == "inside the task"]
    assert child.parent.span_id == consumer.context.span_id
    assert consumer.attributes["tasks_app.outcome"] == "complete"


def test_without_a_configured_provider_nothing_is_traced_or_stored(redis_db):
    assert not tracing.active()
    job = enqueue("noop")
    assert "otel" not in stored(job.key).meta


def test_without_the_package_nothing_of_it_is_imported():
    # A fresh interpreter in which opentelemetry cannot be imported (as if not installed): enqueue and
    # run a job inline, then look at what was imported.
    script = """
import sys
class Absent:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] == 'opentelemetry':
            raise ImportError('not installed')
sys.meta_path.insert(0, Absent())
import django
django.setup()
from tasks_app import enqueue, tracing
from tasks_app.testing import capture_jobs, run_jobs
with capture_jobs() as jobs:
    enqueue('greet', name='x')
    run_jobs()
print(json.dumps([jobs[0].job.status.value, tracing.active(), jobs[0].job.meta,
                  sorted(m for m in sys.modules if m.startswith('opentelemetry'))]))
"""
    result = subprocess.run(
        [sys.executable, "-c", "import json\n" + script],
        cwd=ROOT,
        env={"DJANGO_SETTINGS_MODULE": "tests.settings", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == ["complete", False, {}, []]


def test_a_provider_set_in_place_of_another_gets_its_own_tracer():
    """A replaced provider, once collected, may leave its address (``id``) to the next one (CPython
    reuses a freed block at once): the spans must go to the provider set now, not to a tracer of the
    old one (shut down: nothing exported)."""

    def reset():
        trace._TRACER_PROVIDER_SET_ONCE = Once()
        trace._TRACER_PROVIDER = None

    old = TracerProvider()
    trace.set_tracer_provider(old)
    tracing._get_tracer()
    old.shutdown()
    reset()
    del old
    new = TracerProvider()  # most often at the old one's address
    exporter = InMemorySpanExporter()
    new.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(new)
    try:
        with tracing._get_tracer().start_as_current_span("after the replacement"):
            pass
        assert [s.name for s in exporter.get_finished_spans()] == ["after the replacement"]
    finally:
        new.shutdown()
        reset()
