"""``manage.py enqueue``: validation before anything is enqueued, and --wait."""

import json
import re

import pytest
from django.core.management import CommandError, call_command

from tests.queue_state import count, stored

from .helpers import manage


def queued(redis_db) -> int:
    return count("incomplete")


def enqueue(*args):
    call_command("enqueue", *args)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["gret", "name=x"], "Unknown task 'gret'. Did you mean: greet"),
        (["greet"], "missing a required argument: 'name'"),
        (["greet", "name=x", "colour=red"], "unexpected keyword argument 'colour'"),
        (["greet", "name=x", "key=abc"], "key is a SAQ job field"),
        (["greet", "name=x", "timeout=5"], "timeout is a SAQ job field"),
        (["greet", "--kwargs", "{not json"], "--kwargs is not valid JSON"),
        (["greet", "--kwargs", "[1, 2]"], "--kwargs must be a JSON object"),
        (["greet", "name"], "is not NAME=VALUE"),
        (["greet", "name=a", "name=b"], "given twice"),
        (["greet", "name=a", "--kwargs", '{"name": "b"}'], "both as NAME=VALUE and in --kwargs"),
        (["greet", "name=x", "--queue", "nope"], "Unknown queue.s. 'nope'. Configured queues: default."),
        (["greet", "name=x", "--at", "tomorrow"], "is not an ISO 8601 date-time"),
        (["greet", "name=x", "--timeout", "-1"], "--timeout must not be negative"),
        (["greet", "name=x", "times=abc-123"], "argument times must be int, got 'abc-123'"),
        (["greet", "name=x", "times=1.5"], "argument times must be int, got 1.5"),
        (["greet", "name=x", "loud=maybe"], "argument loud must be bool, got 'maybe'"),
        (["greet", "--kwargs", '{"name": 42}'], "argument name must be str, got 42"),
        (["greet", "--kwargs", '{"name": "x", "times": NaN}'], "NaN or Infinity, which JSON has no way to store"),
        (["sleep_then_note", "seconds=Infinity", "text=x"], "argument seconds holds NaN or Infinity"),
        (["nope_task"], "a function decorated with @task in the tasks.py of an app in INSTALLED_APPS"),
    ],
)
def test_bad_input_is_a_command_error_and_nothing_is_enqueued(redis_db, args, message):
    with pytest.raises(CommandError, match=message.replace("(", r"\(").replace("[", r"\[")):
        enqueue(*args)
    assert queued(redis_db) == 0


DEEP = "[" * 3000 + "]" * 3000  # past what Python's JSON parser can nest: a RecursionError, not a ValueError


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["noop", "--kwargs", DEEP], "--kwargs nests more than 32 levels deep."),
        (["greet", "name=x", f"times={DEEP}"], "Argument 'times' nests more than 32 levels deep."),  # an int
        (["noop", f"extra={DEEP}"], "Argument 'extra' nests more than 32 levels deep."),  # no annotation
    ],
)
def test_json_nested_thousands_deep_is_refused_not_a_traceback(redis_db, args, message):
    with pytest.raises(CommandError) as caught:
        enqueue(*args)
    assert str(caught.value) == message
    assert queued(redis_db) == 0


def test_a_queue_setting_error_is_one_line_and_exit_2_as_runworker_says_it(subprocess_env):
    # A typo in the URL's own parameters: runworker's one line (and the README's), not a system-check block.
    url = subprocess_env["TEST_REDIS_URL"]
    env = {**subprocess_env, "TEST_REDIS_URL": url + ("&" if "?" in url else "?") + "concurency=5"}
    for command in (["enqueue", "noop"], ["runworker", "--burst"]):
        result = manage(*command, env=env)
        assert result.returncode == 2, (command, result.stderr)
        assert result.stdout == "" and result.stderr.count("\n") == 1, (command, result.stderr)
        assert "no parameter 'concurency' (did you mean 'concurrency'?)" in result.stderr


def test_an_unknown_queue_is_exit_1_worded_as_every_command_words_it(subprocess_env):
    for name in ("nope", ""):  # '' too: it used the task's own queue
        for command in (["enqueue", "noop", "--queue", name], ["runworker", "--queue", name]):
            result = manage(*command, env=subprocess_env)
            assert result.returncode == 1, (command, result.stderr)
            said = f"CommandError: Unknown queue(s) {name!r}. Configured queues: default."
            assert result.stderr.startswith(said), (command, result.stderr)


def test_values_are_json_where_they_parse_else_strings(redis_db, capsys):
    enqueue("greet", "name=42abc", "times=2", "loud=true")
    key, status = capsys.readouterr().out.split()
    job = stored(key).to_dict()
    assert status == "queued"
    assert job["kwargs"] == {"name": "42abc", "times": 2, "loud": True}


def test_text_is_converted_to_each_parameter_s_type(redis_db, capsys):
    # "42" is a name for a str parameter and a number for an int one; "0" a bool only as JSON false.
    enqueue("greet", "name=42", "times=3", "loud=false")
    key = capsys.readouterr().out.split()[0]
    assert stored(key).to_dict()["kwargs"] == {"name": "42", "times": 3, "loud": False}


def test_help_lists_the_registered_tasks(capsys):
    with pytest.raises(SystemExit):
        call_command("enqueue", "--help")
    help_text = " ".join(capsys.readouterr().out.split())
    assert "Registered task name: " in help_text
    for name in ("greet", "add_note", "sleep_then_note"):
        assert name in help_text


def test_with_no_worker_running_the_command_says_the_job_waits(redis_db, capsys):
    enqueue("greet", "name=x")
    assert "No worker of queue 'default' is running: the job waits" in capsys.readouterr().err


def test_a_task_no_live_worker_knows_asks_for_a_restart(redis_db, capsys):
    import time

    # A live worker's info, as runner.build_worker publishes it, from before greet existed.
    redis_db.set("saq:default:worker_info:w1", json.dumps({"metadata": {"tasks": ["noop"]}}))
    redis_db.zadd("saq:default:stats", {"saq:default:worker_info:w1": (time.time() + 60) * 1000})
    enqueue("greet", "name=x")
    err = capsys.readouterr().err
    assert "No live worker of queue 'default' has task 'greet' registered" in err
    assert "restart the workers of queue 'default'" in err
    # What happens meanwhile: a worker without the task fails each attempt it takes (it does not wait).
    assert "a worker without it that takes the job fails the attempt" in " ".join(err.split())
    assert count("queued") == 1  # still enqueued

    redis_db.set("saq:default:worker_info:w1", json.dumps({"metadata": {"tasks": ["noop", "greet"]}}))
    enqueue("greet", "name=y")
    assert capsys.readouterr().err == ""


def test_options_reach_the_job(redis_db, capsys):
    enqueue(
        "greet",
        "--kwargs",
        '{"name": "ada"}',
        "--timeout",
        "7",
        "--retries",
        "2",
        "--key",
        "greet-ada",
        "--delay",
        "60",
    )
    out = capsys.readouterr().out
    job = stored("greet-ada").to_dict()
    assert out.startswith("greet-ada queued at ")
    assert (job["timeout"], job["retries"]) == (7, 3)  # 2 retries = 3 attempts in SAQ's terms
    assert job["scheduled"] > 0


def test_a_pending_key_is_not_enqueued_twice(redis_db, capsys):
    enqueue("greet", "name=a", "--key", "once")
    enqueue("greet", "name=b", "--key", "once")
    assert "already pending" in capsys.readouterr().out
    assert count("queued") == 1


def test_errors_exit_non_zero_without_traceback(subprocess_env):
    result = manage("enqueue", "no_such_task", env=subprocess_env)
    assert result.returncode != 0
    assert "Unknown task 'no_such_task'" in result.stderr
    assert "Traceback" not in result.stderr


def test_redis_down_is_a_clear_error(subprocess_env):
    env = {**subprocess_env, "TEST_REDIS_URL": "redis://127.0.0.1:1/0"}
    result = manage("enqueue", "greet", "name=x", env=env)
    assert result.returncode != 0
    assert "Cannot reach Redis" in result.stderr and "REDIS_URL" in result.stderr
    assert ".. " not in result.stderr  # one period after the reason
    assert 'fix SAQ["QUEUES"]["default"]["URL"] (set from the environment variable TEST_REDIS_URL).' in result.stderr
    assert "Traceback" not in result.stderr


def test_wait_prints_the_result_as_json(start_worker, subprocess_env):
    start_worker()
    result = manage("enqueue", "greet", "name=ada", "times=2", "--wait", "--wait-timeout", "30", env=subprocess_env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == "hello ada hello ada"


def test_wait_exits_non_zero_when_the_job_fails(start_worker, subprocess_env):
    start_worker()
    result = manage("enqueue", "boom", "--wait", "--wait-timeout", "30", env=subprocess_env)
    assert result.returncode == 1
    # One line, saying why and where its traceback is.
    assert "Traceback" not in result.stderr
    said = r"CommandError: Job [-0-9a-f]+ failed: ValueError: boom \(-v 2 prints the job's traceback; .*\)\n$"
    assert re.search(said, result.stderr), result.stderr
    verbose = manage("enqueue", "boom", "--wait", "--wait-timeout", "30", "-v", "2", env=subprocess_env)
    # The job's traceback, then one line that ends it.
    assert verbose.returncode == 1 and "Traceback" in verbose.stderr
    assert re.search(r"CommandError: Job [-0-9a-f]+ failed: ValueError: boom\n$", verbose.stderr), verbose.stderr


@pytest.mark.parametrize("seconds", ["0.5", "0"])  # 0: SAQ's "for ever" once; here a look, now
def test_wait_times_out_with_its_own_exit_code(subprocess_env, seconds):
    result = manage("enqueue", "noop", "--wait", "--wait-timeout", seconds, env=subprocess_env)
    assert result.returncode == 3
    assert "still queued" in result.stderr and "runworker" in result.stderr


# --- times and durations that are not finite, or too far away: refused before anything is enqueued ------


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--delay", "nan", "--delay 'nan' is not a finite number of seconds"),
        ("--delay", "inf", "--delay 'inf' is not a finite number of seconds"),
        ("--delay", "-inf", "--delay '-inf' is not a finite number of seconds"),
        ("--delay", "soon", "--delay 'soon' is not a number of seconds"),
        ("--wait-timeout", "nan", "--wait-timeout 'nan' is not a finite number of seconds"),
        ("--wait-timeout", "-1", "--wait-timeout must not be negative"),
    ],
)
def test_a_bad_number_of_seconds_is_refused_naming_its_flag(redis_db, flag, value, message):
    with pytest.raises(CommandError, match=message):
        enqueue("noop", f"{flag}={value}")
    assert queued(redis_db) == 0


@pytest.mark.parametrize("delay", ["1e12", "1e300"])
def test_a_delay_past_the_year_9999_is_refused(redis_db, delay):
    with pytest.raises(CommandError):
        enqueue("noop", "--delay", delay)
    assert queued(redis_db) == 0


def test_a_job_whose_time_cannot_be_shown_is_not_enqueued(redis_db, monkeypatch):
    # Whatever build_job lets through, the command shows the time before enqueueing, not after.
    from tasks_app.enqueueing.building import build_job
    from tasks_app.management.commands import enqueue as command

    def far_future(*args, **kwargs):
        built = build_job(*args, **kwargs)
        built.job.scheduled = 10**12  # the year 33658
        return built

    monkeypatch.setattr(command, "build_job", far_future)
    with pytest.raises(CommandError, match="past the year 9999"):
        enqueue("noop")
    assert queued(redis_db) == 0


@pytest.mark.parametrize("delay", ["nan", "inf", "1e12"])
def test_a_bad_delay_exits_1_without_traceback_and_enqueues_nothing(subprocess_env, delay):
    result = manage("enqueue", "noop", "--delay", delay, env=subprocess_env)
    assert (result.returncode, result.stdout) == (1, "")  # exit 1: bad input, nothing enqueued
    assert result.stderr.startswith("CommandError: ") and "Traceback" not in result.stderr
    assert "--delay" in result.stderr or "delay=" in result.stderr
    assert count("incomplete") == 0


def test_without_a_task_the_usage_error_names_only_the_task(subprocess_env):
    result = manage("enqueue", env=subprocess_env)
    assert result.returncode == 2
    assert result.stderr.endswith("error: the following arguments are required: task\n"), result.stderr
