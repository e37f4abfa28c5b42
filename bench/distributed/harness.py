"""One harness: the network, the servers, the database and the workers of a run, set up and torn down.

``Harness`` is what both the command (``run.py``) and the test suite (``tests/distributed/``) use:

    with Harness(directory, hosts=3) as harness:    # root: namespaces, servers, Django, workers
        row = harness.run_fault("pause", seconds=10)

Inside the block Django is set up with ``bench.distributed.settings`` against a database made for
the run (``test_<name>``, see ``database_url()``; dropped at the end; with ``database=False``, the
caller's own settings' database instead), and everything is removed
on the way out, however it is left (``cleanup.guard``).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from . import checks, ledger
from .cleanup import Resources, guard
from .faults import Fault
from .load import Load, Phase
from .network import Network
from .topology import DOWN_AFTER_MS, Topology
from .workers import Worker, Workers

DEBIAN_TOOLS = Path(__file__).resolve().parents[2] / ".ci" / "debian-tools"

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/harness_distributed"


def database_url(site: int) -> str:
    """The server and name of the run's database: ``DIST_DATABASE_URL``; else ``TEST_DATABASE_URL``'s
    server (or ``DEFAULT_DATABASE_URL``'s) with ``_distributed<site>`` after its name, so that neither a
    test run's own database nor another harness run's (another site) is this run's. (``test_`` goes
    before the name when it is made.)"""
    if url := os.environ.get("DIST_DATABASE_URL"):
        return url
    parts = urlsplit(os.environ.get("TEST_DATABASE_URL") or DEFAULT_DATABASE_URL.removesuffix("_distributed"))
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + f"_distributed{site}"))


class Harness:
    def __init__(
        self, directory: Path, *, hosts: int = 3, concurrency: int = 10, wait_replicas: bool = True,
        database: bool = True, tls_acl: bool = False, replicas: int = 1, down_after_ms: int = DOWN_AFTER_MS,
        warmup: float = 2.0, settle: float = 3.0, drain_timeout: float = 180.0,
    ) -> None:  # fmt: skip
        self.directory = directory
        self.host_count = hosts
        self.concurrency = concurrency
        self.wait_replicas = wait_replicas
        self.own_database = database
        self.tls_acl = tls_acl
        self.replicas = replicas
        self.down_after_ms = down_after_ms
        self.warmup, self.settle, self.drain_timeout = warmup, settle, drain_timeout
        self.resources = Resources()
        self.windows: list[checks.FaultWindow] = []
        self.rows: list[checks.Row] = []
        self._guard = guard(self.resources)

    # --- set up and tear down ----------------------------------------------------------------------

    def __enter__(self) -> Harness:
        self._guard.__enter__()
        try:
            self._start()
        except BaseException:
            self._guard.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        try:
            if hasattr(self, "load"):
                self.load.stop()
            if hasattr(self, "workers"):
                self.workers.stop_all()
            if self._database_config is not None:
                from django.db import connections
                from django.test.utils import teardown_databases

                connections.close_all()
                teardown_databases(self._database_config, verbosity=0)
        finally:
            self._guard.__exit__(*exc_info)

    def _start(self) -> None:
        self._database_config = None
        # libfaketime (the skewed worker) and socat (the hosts' way to PostgreSQL), as CI installs them.
        tools = subprocess.run([str(DEBIAN_TOOLS)], capture_output=True, text=True)
        if tools.returncode != 0:
            raise RuntimeError(tools.stderr.strip())
        self.network = Network(self.resources)
        self.hosts = [self.network.add_host() for _ in range(self.host_count)]
        if self.own_database:
            os.environ["TEST_DATABASE_URL"] = database_url(self.network.site)
        parts = urlsplit(os.environ.get("TEST_DATABASE_URL", DEFAULT_DATABASE_URL))
        self.topology = Topology(self.network.service_address, self.directory, self.resources,
                                 postgres=(parts.hostname or "127.0.0.1", parts.port or 5432),
                                 tls_acl=self.tls_acl, replicas=self.replicas,
                                 down_after_ms=self.down_after_ms).start()  # fmt: skip
        self.ledger = self.topology.ledger.client()
        self._configure_environment()
        import django
        from django.conf import settings

        if not settings.configured:
            django.setup()
        from django.db import connection

        if self.own_database:
            from django.test.utils import setup_databases

            self._database_config = setup_databases(verbosity=0, interactive=False)
        db = connection.settings_dict
        address = f"{self.topology.address}:{self.topology.pg_port}"
        worker_database_url = f"postgres://{db['USER'] or 'postgres'}@{address}/{db['NAME']}"
        self.workers = Workers(self.resources, self.directory, {**self._env, "TEST_DATABASE_URL": worker_database_url},
                               self.concurrency)  # fmt: skip
        for host in self.hosts:
            self.workers.start(host)
        self.wait_until_working(self.workers.started)
        self.load = Load()
        self.load.start()

    def queue_url(self, query: str = "") -> str:
        """Through the sentinels, except with ``tls_acl`` (its Sentinel URLs carry no TLS options): then the
        primary's own URL; ``query``: tasks_app's options, e.g. ``wait_replicas=1``."""
        if not self.tls_acl:
            return self.topology.sentinel_url(query=query)
        url = self.topology.direct_url()
        return url + ("&" if "?" in url else "?") + query if query else url

    def _configure_environment(self) -> None:
        durable = "wait_replicas=1&wait_timeout=1000"
        self._env = {
            "DIST_QUEUE_URL": self.queue_url(durable if self.wait_replicas else ""),
            "DIST_PLAIN_URL": self.queue_url(),
            "DIST_DURABLE_URL": self.queue_url(durable),
            "DIST_LEDGER_URL": self.topology.ledger_url,
            # tests.settings would otherwise lease a database of the machine's Redis, which a host cannot reach.
            "TEST_REDIS_URL": self.topology.ledger_url.removesuffix("/0") + "/1",
            "BENCH_REDIS_URL": self.topology.ledger_url.removesuffix("/0") + "/1",
        }
        os.environ.update(self._env)
        os.environ["DJANGO_SETTINGS_MODULE"] = "bench.distributed.settings"  # not a test run's tests.settings

    def wait_until_working(self, workers: list[Worker], queue: str = "default", timeout: float = 120.0) -> None:
        """Until each of ``workers`` has run a job of ``queue`` (it is up and reaches Redis, the database
        and the ledger): small jobs are enqueued each second until then."""
        from tasks_app import enqueue_many

        deadline = time.monotonic() + timeout
        waiting = {w.pid for w in workers}
        while True:
            enqueue_many("dist_work", [{"seconds": 0.2}] * (self.concurrency * len(workers)), queue=queue)
            time.sleep(1)
            ran = {e.pid for runs in ledger.read(self.ledger).executions.values() for e in runs if e.outcome}
            if waiting <= ran:
                return
            if time.monotonic() > deadline:
                logs = "\n".join(f"--- {w.log}\n{w.log.read_text()[-2000:]}" for w in workers if w.pid not in ran)
                raise RuntimeError(f"Workers ran nothing within {timeout:.0f}s:\n{logs}")

    # --- one fault ---------------------------------------------------------------------------------

    def run_fault(self, name: str, seconds: float) -> checks.Row:
        """Load, inject fault ``name``, keep it ``seconds``, repair it, drain, check; returns its row."""
        phase = Phase(name)
        window_start = ledger.now_ms(self.ledger)
        self.load.phase = phase
        self._wait(self.warmup)
        fault = Fault(name, self.hosts, self.workers, self.topology)
        epoch = self.topology.config_epoch()
        fault_ms, fault_at = ledger.mark_fault(self.ledger, name), time.monotonic()
        pids = fault.inject()
        if name == "kill-primary":
            assert fault.dead is not None
            self.topology.wait_failover(fault.dead)
            fault.notes.append(f"failover done {time.monotonic() - fault_at:.1f}s after the kill")
            # Its supervisor (systemd, Kubernetes) starts the dead server again at once: it rejoins as
            # a replica, which wait_replicas=1 needs (the new primary has no other).
            self.topology.restore(fault.dead)
            fault.notes.append(f"old primary back as a replica {time.monotonic() - fault_at:.1f}s after the kill")
        if name == "skew":
            assert fault.victim is not None
            self.wait_until_working([fault.victim])  # its clock counts from when it runs jobs
            fault_at = time.monotonic()
        self._wait(seconds - (time.monotonic() - fault_at), restart=name != "partition")
        fault.heal()
        end_ms = ledger.now_ms(self.ledger)
        self.windows.append(checks.FaultWindow(name, fault_ms, end_ms, pids))
        self._wait(self.settle)
        self.load.phase = None
        if (
            epoch is not None
            and (now := self.topology.config_epoch()) is not None
            and now - epoch > (name == "kill-primary")
        ):
            # A failover nobody asked for: the sentinels found the primary down when it was not (a new
            # primary's first PING unanswered within down-after-milliseconds counts, with the other
            # sentinels' opinions of the dead one, up to 5 s old, as a quorum: --down-after-ms).
            fault.notes.append(f"the sentinels failed over {now - epoch} time(s) in this phase")
        keys = [ack.key for ack in phase.acked]
        row = asyncio.run(self._check(phase, keys, fault_ms, fault_at, (window_start, ledger.now_ms(self.ledger))))
        row.examples[:0] = fault.notes + phase.errors[:3]
        self.rows.append(row)
        return row

    def _wait(self, seconds: float, restart: bool = True) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if restart:
                self.workers.restart_exited()
            time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))

    def _wait_outbox_empty(self) -> None:
        """Until every outbox row is delivered: an acknowledged save whose job is not in Redis yet is not lost."""
        from django.db import connection

        from tasks_app.models import OutboxEntry

        deadline = time.monotonic() + self.drain_timeout
        try:
            while OutboxEntry.objects.exists() and time.monotonic() < deadline:
                time.sleep(0.5)
        finally:
            connection.close()

    async def _check(self, phase: Phase, keys: list[str], fault_ms: int, fault_at: float, span: tuple[int, int]):
        from tasks_app.enqueueing.connections import make_queue

        queue = make_queue("default", socket_timeout=5)
        try:
            await asyncio.to_thread(self._wait_outbox_empty)
            await checks.drain(queue, keys, self.drain_timeout)
            await asyncio.sleep(1)  # the last after_process hooks reach the ledger
            return await checks.check_phase(queue, phase, ledger.read(self.ledger), self.windows, fault_ms, fault_at,
                                            span)  # fmt: skip
        finally:
            await queue.disconnect()
