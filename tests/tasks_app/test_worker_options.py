"""``runworker --workers N``: every option reaches each worker process, --max-jobs included."""

import socket

import pytest
from django.core.management import CommandError, call_command

from tasks_app import enqueue_many
from tasks_app.management.commands.runworker import Command, _child_options
from tests.queue_state import count

from .helpers import manage

# What only the supervisor does: it checks, reloads, counts the processes, serves --web from the first
# child only, and --check never supervises.
SUPERVISOR_ONLY = {"workers", "reload", "skip_checks", "web", "host", "port", "check"}


def parse(argv: list[str]) -> dict:
    return vars(Command().create_parser("manage.py", "runworker").parse_args(argv))


def test_each_worker_process_gets_every_option_but_the_supervisors():
    given = parse(
        ["--queue", "default", "--concurrency", "3", "--burst", "--max-jobs", "7", "--workers", "2", "-v", "2",
         "--settings", "tests.settings", "--pythonpath", "/tmp", "--traceback", "--no-color"]
    )  # fmt: skip
    child = parse(_child_options(["default"], given))
    differing = {name for name in given if given[name] != child[name]}
    assert differing <= SUPERVISOR_ONLY, differing
    assert (child["reload"], child["skip_checks"], child["max_jobs"]) == (False, True, 7)


def test_max_jobs_must_be_positive(redis_db):
    with pytest.raises(CommandError, match="--max-jobs must be at least 1"):
        call_command("runworker", "--burst", "--max-jobs", "0", "--skip-checks")


def test_concurrency_past_what_redis_and_the_process_can_hold_is_refused(redis_db):
    """Each slot waits for jobs on a connection of its own: 100,000 of them ran out of file descriptors, and
    that worker could not be stopped by SIGINT."""
    with pytest.raises(CommandError, match=r"--concurrency must be at most 1000 .* with --workers N"):
        call_command("runworker", "--concurrency", "100000", "--skip-checks")


def test_workers_past_a_few_per_cpu_are_refused_before_any_starts(redis_db):
    """--workers 100000 started processes until the host could do nothing else, and a SIGTERM did not stop it."""
    from tasks_app.process.supervisor import max_workers

    with pytest.raises(CommandError, match=rf"--workers must be at most {max_workers()} here \(4 per CPU"):
        call_command("runworker", "--workers", str(max_workers() + 1), "--skip-checks")


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--concurrency", "0"], "--concurrency must be at least 1"),
        (["--workers", "-5"], "--workers must be at least 1"),
    ],
)
def test_check_refuses_the_flags_every_other_mode_refuses(redis_db, flags, message):
    with pytest.raises(CommandError, match=message):
        call_command("runworker", "--check", *flags)


def test_max_jobs_applies_to_each_worker_process(subprocess_env):
    enqueue_many("noop", [{} for _ in range(6)])
    result = manage(
        "runworker", "--burst", "--max-jobs", "1", "--workers", "2", "--no-reload", "--skip-checks",
        env=subprocess_env,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert count("queued") == 4


def test_max_jobs_is_documented_per_process():
    help_text = Command().create_parser("manage.py", "runworker").format_help()
    assert "per queue in each worker process" in " ".join(help_text.split())


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("redis://127.0.0.1:1/0?concurency=5", "take no parameter 'concurency' (did you mean 'concurrency'?)"),
        ("redis://:p@ss/w#rd@127.0.0.1:1/0", "percent-encode / ? # @ in the password"),
        ("redis://127.0.0.1:1/seven", "database 'seven' is not a number, and redis-py would use database 0"),
    ],
)
def test_a_queue_url_redis_py_would_choke_on_is_one_line_naming_the_setting(subprocess_env, url, said):
    # Before: a misspelt parameter passed the checks, then every connection raised a TypeError deep in
    # redis-py; a password with an unencoded / or # was half printed as the "host" it was read as.
    env = {**subprocess_env, "TEST_REDIS_URL": url}
    probe = manage("runworker", "--check", env=env)
    assert probe.returncode == 2, probe.stderr  # a setting, as "Redis unreachable": not "no live worker" (1)
    for result in (probe, manage("enqueue", "noop", env=env)):
        text = result.stdout + result.stderr
        assert result.returncode != 0, text
        assert said in text and 'SAQ["QUEUES"]["default"]["URL"]' in text
        assert "Traceback" not in text and "ss/w" not in text and "w#rd" not in text


@pytest.mark.parametrize("workers", ["1", "2"])  # 2: supervised, the child serving it would be restarted for ever
def test_a_monitor_port_in_use_is_one_line_saying_to_choose_another(subprocess_env, workers):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = manage(
            "runworker", "--web", "--port", str(port), "--no-reload", "--workers", workers, env=subprocess_env
        )
    assert result.returncode == 1, result.stderr
    assert f"Cannot serve SAQ's monitor on 127.0.0.1:{port}:" in result.stderr
    assert "already in use" in result.stderr.lower()
    assert result.stderr.endswith("Choose another --port (or --host), or stop what listens there.\n")
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("port", ["0", "65536", "99999", "-1", "web"])
def test_a_monitor_port_outside_1_65535_is_refused_naming_the_range(port):
    with pytest.raises(CommandError, match=f"argument --port: .*{port}.* is not a port number: give 1-65535"):
        parse(["--web", "--port", port])
