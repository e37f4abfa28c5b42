"""The fault harness's checker: how it tells one job run again from a new job under the same key."""

from bench.distributed.checks import instances
from bench.distributed.ledger import Execution


def test_a_first_attempt_taken_before_the_end_and_started_after_a_pause_is_the_same_job():
    ended_elsewhere = Execution(at_ms=1_000, host="host1", pid=1, attempt=2, outcome="complete", ended_ms=2_000)
    paused = Execution(at_ms=9_000, host="host2", pid=2, attempt=1, taken_ms=500)  # taken, then SIGSTOP
    assert instances([ended_elsewhere, paused]) == [[ended_elsewhere, paused]]


def test_a_first_attempt_taken_after_the_end_is_a_new_job_of_the_key():
    first = Execution(at_ms=1_000, host="host1", pid=1, attempt=1, outcome="complete", ended_ms=2_000, taken_ms=1_000)
    again = Execution(at_ms=3_000, host="host2", pid=2, attempt=1, taken_ms=2_500)
    assert instances([first, again]) == [[first], [again]]
