"""The outcome line of an attempt says the attempt it was and the error's type and first line."""

import logging

from saq.job import Job

from tasks_app.engine.execution import log_attempt


def line(caplog, job: Job, outcome: str, exception: BaseException | None = None, **options) -> logging.LogRecord:
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="tasks_app.test"):
        log_attempt(logging.getLogger("tasks_app.test"), job, outcome, 0.5, exception, **options)
    (record,) = caplog.records
    return record


def test_a_retry_logs_the_error_type_and_its_first_line_not_a_drivers_hint(caplog):
    job = Job("fetch", key="k", attempts=1)
    error = OSError('connection to server at "db" failed: Connection refused\n\tIs the server running on that host?')
    record = line(caplog, job, "retrying", error)
    assert record.error == 'OSError: connection to server at "db" failed: Connection refused'
    assert record.getMessage().endswith(f"error={record.error}")


def test_an_error_without_a_message_is_logged_as_its_type(caplog):
    assert line(caplog, Job("fetch", key="k", attempts=1), "retrying", TimeoutError()).error == "TimeoutError"


def test_a_requeued_attempt_logs_the_attempt_it_was_not_the_count_after_its_return(caplog):
    job = Job("fetch", key="k", attempts=0)  # put back on its queue: the attempt no longer counts
    record = line(caplog, job, "requeued", attempt=1)
    assert record.attempt == 1 and " attempt=1 " in record.getMessage()
