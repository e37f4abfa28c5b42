"""Task registration, autodiscovery, and the system checks that name each misconfiguration."""

import pytest
from django.core import checks
from django.test import override_settings

from tasks_app import checks as tasks_checks
from tasks_app import task
from tasks_app.registry import TaskNotFound, register_task_functions, registry


@pytest.fixture
def scratch_registry():
    """Let a test register tasks, then put the registry back as it was."""
    saved_tasks, saved_collisions = dict(registry._tasks), dict(registry.collisions)
    yield registry
    registry._tasks, registry.collisions = saved_tasks, saved_collisions


def error_ids(messages) -> list[str]:
    return [message.id for message in messages]


def test_tasks_py_modules_are_autodiscovered():
    assert {"add_note", "add_note_sync", "flaky", "greet"} <= {spec.name for spec in registry.all()}
    assert registry.get("add_note").path == "tests.sampleapp.tasks.add_note"


def test_bare_and_configured_decorators(scratch_registry):
    @task
    async def plain(ctx):
        return 1

    @task(name="custom.name", timeout=5, retries=0, queue="default")
    def configured(ctx, x: int):
        return x

    assert registry.get("plain").func is plain
    spec = registry.get("custom.name")
    assert spec.job_options()["timeout"] == 5 and spec.job_options()["retries"] == 0
    assert not spec.is_async and registry.get("plain").is_async
    assert configured(None, 3) == 3  # still a plain function


def test_unknown_decorator_option_is_refused():
    with pytest.raises(TypeError, match="unknown option"):
        task(timout=5)


@pytest.mark.parametrize("options", [{"ttl": 1.5}, {"heartbeat": "30"}, {"timeout": -1}, {"retry_backoff": "yes"}])
def test_a_bad_decorator_option_value_is_refused(options):
    with pytest.raises(TypeError, match=f"@task: {next(iter(options))}="):
        task(**options)(lambda ctx: None)


def test_unknown_task_suggests_close_matches():
    with pytest.raises(TaskNotFound, match="Did you mean: add_note"):
        registry.get("add_nte")


def test_name_collision_is_a_system_check_error(scratch_registry):
    def make(module):
        async def refresh(ctx):
            pass

        refresh.__module__, refresh.__qualname__ = module, "refresh"
        return refresh

    task(make("app_one.tasks"))
    task(make("app_two.tasks"))
    errors = tasks_checks.check_task_registry()
    assert "tasks_app.E005" in error_ids(errors)
    assert "app_one.tasks.refresh" in errors[0].msg and "app_two.tasks.refresh" in errors[0].msg


def test_parameter_named_like_a_job_field_is_a_system_check_error(scratch_registry):
    @task
    async def bad_params(ctx, timeout: int):  # noqa: ASYNC109 (the point of the test)
        pass

    assert "tasks_app.E006" in error_ids(tasks_checks.check_task_registry())


def test_task_functions_by_dotted_path(settings, scratch_registry):
    settings.SAQ = {**settings.SAQ, "TASK_FUNCTIONS": ["tests.sampleapp.plain.plain_function", "no.such.function"]}
    register_task_functions()
    assert registry.get("plain_function").path == "tests.sampleapp.plain.plain_function"
    errors = tasks_checks.check_task_functions()
    assert error_ids(errors) == ["tasks_app.E002"] and "no.such.function" in errors[0].msg


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("without_ctx", "the function: without_ctx() must take the job's context first"),
        ("generates", "the function: generates() is a generator function"),
        ("f" * 201, "is 201 characters; at most 200"),
        ("partial_function", "it has no __name__ (a functools.partial, an instance?): give a module-level function."),
    ],
)
def test_task_functions_no_worker_could_run_are_a_system_check_error(settings, scratch_registry, name, text):
    # They were registered, and every job of theirs failed in the worker (or, for the long name, every cron tick).
    path = f"tests.sampleapp.plain.{name}"
    settings.SAQ = {**settings.SAQ, "TASK_FUNCTIONS": [path]}
    register_task_functions()
    assert name not in registry
    (error,) = tasks_checks.check_task_functions()
    assert error.id == "tasks_app.E002" and text in error.msg and path[:40] in error.msg


@pytest.mark.parametrize(
    ("saq", "error_id", "text"),
    [
        ({"QUEUES": {"default": {"URL": "http://localhost"}}}, "tasks_app.E001", "is not a Redis URL"),
        ({"QUEUES": {"default": {"URL": "redis://h:port/0"}}}, "tasks_app.E001", "not a valid URL"),
        ({"QUEUES": {"default": {"URL": "redis://h/0?concurrency=x"}}}, "tasks_app.E001", "concurrency"),
        ({"QUEUES": {"default": {"URL": "redis://h/0?concurrency=5000"}}}, "tasks_app.E001", "at most 1000"),
        ({"QUEUES": {"default": {"URL": "redis://h/0", "CONCURRENCY": 5000}}}, "tasks_app.E001", "at most 1000"),
        (
            {"QUEUES": {"default": {"URL": "redis://h/0?concurency=5"}}},
            "tasks_app.E001",
            "take no parameter 'concurency' (did you mean 'concurrency'?)",
        ),
        (
            {"QUEUES": {"default": {"URL": "redis://h/0?ssl_certfile=/tmp/c.pem"}}},
            "tasks_app.E001",
            "'ssl_certfile' (TLS needs a rediss:// URL)",
        ),
        ({"QUEUES": {"default": {"URL": "redis://:p@ss/w#rd@h:6379/0"}}}, "tasks_app.E001", "percent-encode"),
        ({"QUEUES": {"other": {"URL": "redis://h/0"}}}, "tasks_app.E001", '"default" queue'),
        ({"HOOKS": {"startup": ["no.such.hook"]}}, "tasks_app.E003", "no.such.hook"),
        ({"HOOKS": {"on_boot": []}}, "tasks_app.E003", "unknown hook"),
        (
            {"CRON_JOBS": [{"task": "greet", "cron": "61 * * * *", "kwargs": {"name": "x"}}]},
            "tasks_app.E004",
            "invalid cron",
        ),
        ({"CRON_JOBS": [{"task": "noop", "cron": "0 0 30 2 *"}]}, "tasks_app.E004", "never fires: '0 0 30 2 *'"),
        ({"CRON_JOBS": [{"task": "nope", "cron": "0 * * * *"}]}, "tasks_app.E004", "unknown task 'nope'"),
        ({"CRON_JOBS": [{"task": "greet", "cron": "0 * * * *"}]}, "tasks_app.E004", "missing a required argument"),
        ({"CRON_JOBS": [{"task": "noop", "cron": "0 * * * *", "unique": False}]}, "tasks_app.W003", "no effect"),
        ({"CRON_JOBS": [{"task": "noop", "cron": "0 * * * *", "uniq": True}]}, "tasks_app.E004", "'unique' for 'uniq'"),
        ({"CRON_JOB": []}, "tasks_app.E012", "Did you mean 'CRON_JOBS' for 'CRON_JOB'?"),
        ({"CONCURENCY": 5}, "tasks_app.E012", 'mean SAQ["QUEUES"][<name>]["CONCURRENCY"] for \'CONCURENCY\''),
        ({"QUEUES": {"default": {"URL": "redis://h/0", "CONCURENCY": 5}}}, "tasks_app.E012", "'CONCURRENCY' for"),
        ({"TIMERS": {"sweeep": 5}}, "tasks_app.E012", "Did you mean 'sweep' for 'sweeep'?"),
        ({"TIMERS": {"abort": 0}}, "tasks_app.E012", 'SAQ["TIMERS"]["abort"]=0 must be a number of seconds above 0'),
        ({"TIMERS": {"schedule": -1}}, "tasks_app.E012", '["schedule"]=-1 must be a number of seconds above 0'),
        ({"TIMERS": {"outbox": None}}, "tasks_app.E012", '["outbox"]=None must be a number of seconds'),
        ({"TIMERS": {"sweep": "10"}}, "tasks_app.E012", "[\"sweep\"]='10' must be a number of seconds"),
        ({"QUEUES": {"default": {"URL": "redis://h/0", "CONCURRENCY": 0}}}, "tasks_app.E001", '["CONCURRENCY"]=0 must'),
        ({"QUEUES": {"default": {"URL": "redis://h/0", "CONCURRENCY": 2.5}}}, "tasks_app.E001", "=2.5 must be a whole"),
        ({"WEB": {"USER": "ops"}}, "tasks_app.E012", "unknown key(s) ['USER']"),
        ({"HOOKS": {"startp": []}}, "tasks_app.E003", "Did you mean 'startup' for 'startp'?"),
        ({"DEFAULT_JOB_OPTIONS": {"timout": 5}}, "tasks_app.E008", "unknown option"),
        ({"DEFAULT_JOB_OPTIONS": {"retries": -1}}, "tasks_app.E008", "retries"),
        ({"DEFAULT_JOB_OPTIONS": {"ttl": 1.5}}, "tasks_app.E008", "ttl=1.5 must be a whole number of seconds"),
        ({"DEFAULT_JOB_OPTIONS": {"heartbeat": "30"}}, "tasks_app.E008", "heartbeat='30'"),
        ({"DEFAULT_JOB_OPTIONS": {"retry_delay": float("nan")}}, "tasks_app.E008", "retry_delay=nan"),
        ({"DEFAULT_JOB_OPTIONS": {"timeout": None}}, "tasks_app.E008", "timeout"),
        ({"CRON_JOBS": [{"task": "noop", "cron": "0 * * * *", "ttl": -1}]}, "tasks_app.E004", "ttl=-1"),
        ({"DEFAULT_JOB_OPTIONS": {"timeout": 0}}, "tasks_app.W001", "never swept"),
        ({"SHUTDOWN_GRACE_PERIOD": -5}, "tasks_app.E009", "SHUTDOWN_GRACE_PERIOD"),
    ],
)
def test_misconfiguration_is_reported_by_manage_py_check(settings, saq, error_id, text):
    with override_settings(SAQ={**settings.SAQ, **saq}):
        messages = checks.run_checks()
    matching = [m for m in messages if m.id == error_id]
    assert matching, [str(m) for m in messages]
    assert text in matching[0].msg


def test_a_cron_entry_may_say_unique_true_as_in_saq_s_own_cron(settings):
    entry = {"task": "noop", "cron": "0 * * * *", "unique": True}
    with override_settings(SAQ={**settings.SAQ, "CRON_JOBS": [entry]}):
        assert [str(m) for m in checks.run_checks() if m.id.startswith("tasks_app")] == []


def test_shipped_configuration_is_clean():
    assert [m for m in checks.run_checks() if m.id.startswith("tasks_app")] == []


def test_event_loop_setting_is_checked(settings):
    from tasks_app import checks as tasks_checks
    from tasks_app import conf

    settings.SAQ = {**settings.SAQ, "EVENT_LOOP": "trio"}
    assert [e.id for e in tasks_checks.check_job_options()] == ["tasks_app.E011"]
    settings.SAQ = {**settings.SAQ, "EVENT_LOOP": "asyncio"}
    assert conf.event_loop() == "asyncio" and tasks_checks.check_job_options() == []
    settings.SAQ = {**settings.SAQ, "EVENT_LOOP": "auto"}
    assert conf.event_loop() == "uvloop"  # a dependency on Linux


@pytest.mark.parametrize("name", [5, "", b"x"])
def test_a_task_name_must_be_a_non_empty_str(scratch_registry, name):
    with pytest.raises(TypeError, match="must be a non-empty str"):
        task(name=name)
    assert not [spec for spec in registry.all() if not isinstance(spec.name, str)]


def _no_ctx():
    return 1


def _keyword_ctx(*, ctx):
    return 1


async def _async_generator(ctx):
    yield 1


def _generator(ctx):
    yield 1


@pytest.mark.parametrize(
    ("func", "message"),
    [
        (_no_ctx, r"must take the job's context first: def _no_ctx\(ctx, \.\.\.\)"),
        (_keyword_ctx, "must take the job's context first"),
        (_async_generator, r"is a generator function; a task returns its result"),
        (_generator, r"is a generator function"),
        ("not a function", "@task decorates a function, not str"),
    ],
)
def test_a_function_no_worker_could_run_is_refused_when_declared(scratch_registry, func, message):
    with pytest.raises(TypeError, match=message):
        task(func)
    assert "_no_ctx" not in registry and "_generator" not in registry


def test_a_name_too_long_for_its_cron_key_is_refused_when_declared(scratch_registry):
    """A cron entry's runs are keyed ``cron:<name>``: a 251-character name was taken, and its entry then
    failed at every tick (a job key is at most 255 characters)."""

    def f(ctx):
        return 1

    with pytest.raises(TypeError, match=r"is 201 characters; at most 200: give a shorter one with @task\(name="):
        task(name="n" * 201)(f)
    assert "n" * 201 not in registry
    assert task(name="n" * 200)(f).saq_task.name == "n" * 200


def test_an_on_final_failure_path_that_does_not_import_is_a_system_check_error(scratch_registry):
    # Called only once a job has failed for good: without the check, a typo is found out then, in a log line.
    task(name="with_a_bad_hook", on_final_failure="no.such.path")(_hookless)
    task(name="with_a_value", on_final_failure="tasks_app.conf.DEFAULT_QUEUE")(_hookless)
    task(name="with_a_good_hook", on_final_failure="tests.sampleapp.tasks.record_final_failure")(_hookless)
    messages = {m.msg: m.id for m in tasks_checks.check_task_registry()}
    assert messages == {
        "Task 'with_a_bad_hook': on_final_failure 'no.such.path' cannot be imported: No module named 'no'.": (
            "tasks_app.E031"
        ),
        "Task 'with_a_value': on_final_failure 'tasks_app.conf.DEFAULT_QUEUE' is not callable.": "tasks_app.E031",
    }


def _hookless(ctx):
    return 1
