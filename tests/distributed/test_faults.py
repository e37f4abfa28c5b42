"""The fault harness (``bench/distributed``), shortened, on every test run: a Redis primary's death
(Sentinel failover), a worker paused with SIGSTOP, and a worker whose clock is 5 minutes ahead,
each for 8 s, against 3 worker hosts in network namespaces under a load through the site's paths;
then a paused worker again with the queue's Redis over TLS only, reached as an ACL user.

It runs ``python -m bench.distributed`` as CI would run it by hand, and asserts each fault's row:
nothing acknowledged is lost, every job ends, no job has two terminal writes accepted, every
execution beyond one per job is explained by the fault, and ``check_consistency()`` finds nothing.
It needs root for the namespaces (CI runs as root).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.distributed.tls import ACL_PASSWORD
from tests.tasks_app.helpers import ROOT

FAULTS = ("kill-primary", "pause", "skew")
FAULT_SECONDS = 8  # beyond the harness's 5 s heartbeat, so a paused worker's jobs are swept
# Issue 19: new work completes within 15 s of the primary's death.
FAILOVER_BUDGET_S = 15.0
# The deployment docs/operating.md advises for wait_replicas=1 behind Sentinel. Two replicas: one is left to
# confirm writes once the other is promoted (with one, nothing is confirmed until the dead primary is back,
# which its supervisor decides). down-after-milliseconds 5000: with less, the sentinels' opinions of the dead
# primary, kept 5 s, count against a new primary that is slow to answer its first PING, and a loaded machine
# saw them fail it over too (the replica-less old primary then took over for 15 s: first completion 20 s).
TOPOLOGY = ("--replicas", "2", "--down-after-ms", "5000")

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces (CI runs as root)")


def run_harness(directory: Path, *args: str) -> tuple[dict[str, dict], str]:
    """``python -m bench.distributed *args`` without figures: its rows (fault -> row) and its output."""
    rows_path = directory / "rows.json"
    argv = [sys.executable, "-m", "bench.distributed", "--no-figures", "--json", str(rows_path), *args]
    result = subprocess.run(argv, cwd=ROOT, env=os.environ.copy(), capture_output=True, text=True, timeout=400)
    output = result.stdout + result.stderr
    assert rows_path.exists(), f"the harness printed no table:\n{output}"
    return {row["fault"]: row for row in json.loads(rows_path.read_text())}, output


@pytest.fixture(scope="module")
def harness_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, dict], str]:
    """The rows of one shortened run over Sentinel, with wait_replicas=1 and two replicas."""
    directory = tmp_path_factory.mktemp("distributed")
    return run_harness(directory, "--faults", ",".join(FAULTS), "--fault-seconds", str(FAULT_SECONDS), *TOPOLOGY)


def assert_row_holds(row: dict, output: str) -> None:
    assert row["acked"] > 100, output  # the load went on through the fault
    assert (row["lost"], row["not_terminal"], row["double_terminal"]) == (0, 0, 0), output
    assert row["unexplained"] == 0, output
    assert row["invariants"] == 0, output


@pytest.mark.parametrize("fault", FAULTS)
def test_nothing_acknowledged_is_lost_and_every_job_ends_once(harness_run, fault: str) -> None:
    rows, output = harness_run
    assert_row_holds(rows[fault], output)


def test_new_work_completes_soon_after_the_primary_dies(harness_run) -> None:
    rows, output = harness_run
    first = rows["kill-primary"]["first_completion_s"]
    assert first is not None and first <= FAILOVER_BUDGET_S, output


def test_a_skewed_clock_causes_no_second_execution(harness_run) -> None:
    rows, output = harness_run
    # A clock 5 minutes ahead must make no job look abandoned: no sweep of a live job, no re-run.
    assert rows["skew"]["extra"] - rows["skew"]["explained"].get("clean stop", 0) == 0, output


def test_a_paused_worker_loses_its_jobs_to_others_and_its_late_outcomes_are_refused(harness_run) -> None:
    rows, output = harness_run
    row = rows["pause"]
    # Its jobs ran again elsewhere (explained by the pause), and none of them ended twice.
    assert set(row["explained"]) <= {"pause", "clean stop", "retry"}, output
    assert row["double_terminal"] == 0, output


def test_the_job_path_over_tls_as_an_acl_user(tmp_path: Path) -> None:
    """The queue's Redis accepts only TLS, and the workers, the load and the outbox reach it as a user
    who may touch only ``saq:*`` keys and run no ``@dangerous`` command but INFO (``tls.py``)."""
    rows, output = run_harness(tmp_path, "--tls-acl", "--faults", "pause", "--fault-seconds", "6")
    assert "rediss://tasks:***@" in output and ACL_PASSWORD not in output, output  # named, never its password
    assert_row_holds(rows["pause"], output)
