"""System checks: every misconfiguration of ``SAQ`` is reported by ``manage.py check``."""

from __future__ import annotations

import asyncio
import difflib
import re
import sys
from typing import Any
from urllib.parse import urlsplit

from croniter import croniter
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from . import conf, embedded_redis, queue_urls, redis_urls
from .engine import memory_policy
from .engine.cron import never_fires
from .redaction import redact_url
from .registry import import_task_function, registry

QUEUE_SCHEMES = set(redis_urls.SCHEMES)
QUEUE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,100}")


def _error(msg: str, hint: str, id: int) -> checks.Error:
    return checks.Error(msg, hint=hint, id=f"tasks_app.E{id:03d}")


def unknown_keys(
    where: str, given: Any, allowed: Any, id: int, what: str = "option", elsewhere: dict[str, str] | None = None
) -> list[checks.CheckMessage]:
    """One error naming the keys of ``given`` that are not in ``allowed`` (with the allowed key each
    most likely means, or else the setting it belongs to: ``elsewhere`` maps a key to that setting's
    name), or none. A ``given`` that is not a dict has no keys to check."""
    if not isinstance(given, dict):
        return []
    unknown = sorted(str(key) for key in set(given) - set(allowed))
    if not unknown:
        return []
    meant = []
    for key in unknown:
        if guess := difflib.get_close_matches(key, [str(a) for a in allowed], n=1, cutoff=0.6):
            meant.append(f"{guess[0]!r} for {key!r}")
        elif guess := difflib.get_close_matches(key, list(elsewhere or ()), n=1, cutoff=0.6):
            meant.append(f"{(elsewhere or {})[guess[0]]} for {key!r}")
    said = f" Did you mean {', '.join(meant)}?" if meant else ""
    return [_error(f"{where} has unknown {what}(s) {unknown}.{said}", f"Allowed: {', '.join(allowed)}.", id)]


# Top-level SAQ keys: tasks_app's own (conf.DEFAULTS), the dashboard's token, and where settings come from.
SAQ_KEYS = (*conf.DEFAULTS, "API_TOKEN", "SETTING_SOURCES")
QUEUE_KEYS = ("URL", "CONCURRENCY", "WAIT_REPLICAS", "WAIT_TIMEOUT")
WEB_KEYS = tuple(conf.DEFAULTS["WEB"])
CRON_KEYS = ("task", "cron", "kwargs", "unique", *conf.JOB_OPTIONS)


@checks.register()
def check_setting_keys(**kwargs: Any) -> list[checks.CheckMessage]:
    """A misspelt key is otherwise silently ignored: SAQ["CRON_JOB"], a queue's "CONCURENCY"..."""
    saq = conf.raw()
    queue_keys = {key: f'SAQ["QUEUES"][<name>]["{key}"]' for key in QUEUE_KEYS}
    errors = unknown_keys("SAQ", saq, SAQ_KEYS, 12, what="key", elsewhere=queue_keys)
    queues = saq.get("QUEUES")
    if isinstance(queues, dict):
        for name, options in queues.items():
            errors += unknown_keys(f'SAQ["QUEUES"]["{name}"]', options, QUEUE_KEYS, 12, what="key")
    errors += unknown_keys('SAQ["TIMERS"]', saq.get("TIMERS", {}), tuple(conf.DEFAULT_TIMERS), 12, what="timer")
    errors += [_error(problem, "Seconds between runs of a worker's chore.", 12) for problem in conf.timer_problems()]
    errors += unknown_keys('SAQ["WEB"]', saq.get("WEB", {}), WEB_KEYS, 12, what="key")
    return errors


@checks.register()
def check_queues(**kwargs: Any) -> list[checks.CheckMessage]:
    errors = []
    raw_queues = conf.raw().get("QUEUES", conf.DEFAULTS["QUEUES"])
    if not isinstance(raw_queues, dict) or conf.DEFAULT_QUEUE not in raw_queues:
        return [
            _error(
                'SAQ["QUEUES"] must be a dict with a "default" queue.',
                'SAQ = {"QUEUES": {"default": {"URL": "redis://localhost:6379/0"}}}',
                1,
            )
        ]
    try:
        configured = conf.queues()
    except ImproperlyConfigured as exc:
        hint = (
            "Form: redis://[user:password@]host:6379/0, with tasks_app's own ?concurrency=N (N >= 1), "
            "?wait_replicas=N (N >= 0), ?wait_timeout=ms (>= 1); percent-encode / ? # @ in a password."
        )
        return [_error(str(exc), hint, 1)]
    for name, queue in configured.items():
        if not QUEUE_NAME.fullmatch(name):
            # SAQ keys a queue's jobs as saq:job:<queue>:<key>, so "mail" would also scan "mail:bulk"'s.
            errors.append(
                _error(
                    f'SAQ["QUEUES"] name {name!r} must be 1-100 letters, digits, "_", "." or "-".',
                    "No \":\": SAQ's keys use it to separate a queue's name from its jobs'.",
                    1,
                )
            )
        setting = f'SAQ["QUEUES"]["{name}"]["URL"]'
        try:
            scheme = urlsplit(queue.url).scheme
            if scheme != redis_urls.SENTINEL_SCHEME:  # several host:port pairs: redis_urls parses those
                urlsplit(queue.url).port  # noqa: B018
        except ValueError as exc:
            errors.append(_error(f"{setting} is not a valid URL: {exc}.", "Example: redis://localhost:6379/0", 1))
            continue
        if scheme not in QUEUE_SCHEMES:
            hint = "Use redis://, rediss://, unix:// or redis+sentinel://."
            errors.append(_error(f"{setting}={redact_url(queue.url)!r} is not a Redis URL.", hint, 1))
        elif problem := redis_urls.problem(queue.url):
            hint = "See docs/operating.md (Sentinel, TLS)."
            where = conf.setting_name("QUEUES", name, "URL")
            errors.append(_error(f"{where}={redact_url(queue.url)!r} {problem}.", hint, 14))
        if queue.concurrency < 1:
            errors.append(_error(f'SAQ["QUEUES"]["{name}"]["CONCURRENCY"] must be at least 1.', "", 1))
        elif problem := queue_urls.too_concurrent(
            f'SAQ["QUEUES"]["{name}"]["CONCURRENCY"]={queue.concurrency}', queue.concurrency
        ):
            errors.append(_error(problem, "", 1))
    return errors


@checks.register()
def check_task_functions(**kwargs: Any) -> list[checks.CheckMessage]:
    errors = []
    for path in conf.task_functions():
        try:
            import_task_function(path)
        except (ImportError, TypeError) as exc:
            errors.append(
                _error(
                    f'SAQ["TASK_FUNCTIONS"] entry {path!r} cannot be used: {str(exc).rstrip(".")}.',
                    "Give the dotted path of a module-level function, e.g. 'myapp.jobs.send_digest'.",
                    2,
                )
            )
    return errors


def _import_errors(where: str, path: str, id: int) -> list[checks.CheckMessage]:
    """An error if the dotted ``path`` given at ``where`` does not import, or is not callable; else none."""
    try:
        target = import_string(path)
    except ImportError as exc:
        return [_error(f"{where} {path!r} cannot be imported: {exc}.", "Give the dotted path of a function.", id)]
    return [] if callable(target) else [_error(f"{where} {path!r} is not callable.", "", id)]


@checks.register()
def check_hooks(**kwargs: Any) -> list[checks.CheckMessage]:
    errors = unknown_keys('SAQ["HOOKS"]', conf.raw().get("HOOKS", {}), conf.HOOK_NAMES, 3, what="hook")
    for name, paths in conf.hooks().items():
        for path in paths:
            errors += _import_errors(f'SAQ["HOOKS"]["{name}"] entry', path, 3)
    return errors


@checks.register()
def check_cron_jobs(**kwargs: Any) -> list[checks.CheckMessage]:
    errors = []
    for i, entry in enumerate(conf.raw().get("CRON_JOBS", [])):
        where = f'SAQ["CRON_JOBS"][{i}]'
        if not isinstance(entry, dict) or "task" not in entry or "cron" not in entry:
            errors.append(
                _error(
                    f"{where} must be a dict with 'task' and 'cron'.",
                    '{"task": "refresh_all_feeds", "cron": "0 */6 * * *"}',
                    4,
                )
            )
            continue
        errors += unknown_keys(where, entry, CRON_KEYS, 4, what="key")
        if entry.get("unique", True) is not True:
            errors.append(
                checks.Warning(
                    f"{where} sets unique={entry['unique']!r}, which has no effect: a cron entry always has at "
                    "most one pending run, under a key of its own.",
                    hint="Remove 'unique' (unique=True, as in SAQ's own cron, is what happens anyway).",
                    id="tasks_app.W003",
                )
            )
        errors += [_error(f"{where}: {problem}", "", 4) for problem in conf.job_option_problems(entry)]
        if not isinstance(entry["cron"], str) or not croniter.is_valid(entry["cron"]):
            errors.append(
                _error(
                    f"{where} has an invalid cron expression {entry['cron']!r}.",
                    "Five fields: minute hour day-of-month month day-of-week, e.g. '0 2 * * *'.",
                    4,
                )
            )
        elif never_fires(entry["cron"]):
            errors.append(
                _error(
                    f"{where} has a cron expression that never fires: {entry['cron']!r} (no date matches it).",
                    "Check its day-of-month and month fields: '0 0 30 2 *' names February 30th.",
                    4,
                )
            )
        if entry["task"] not in registry:
            errors.append(
                _error(
                    f"{where} names unknown task {entry['task']!r}.",
                    "Define it with @task in an installed app's tasks.py.",
                    4,
                )
            )
        else:
            try:
                registry.get(entry["task"]).validate_kwargs(dict(entry.get("kwargs") or {}))
            except TypeError as exc:
                errors.append(_error(f"{where}: {exc}", "", 4))
    return errors


@checks.register()
def check_task_registry(**kwargs: Any) -> list[checks.CheckMessage]:
    errors = []
    for name, specs in registry.collisions.items():
        paths = ", ".join(spec.path for spec in specs)
        errors.append(
            _error(
                f"Task name {name!r} is registered by more than one function: {paths}.",
                "Give one of them another name: @task(name='app_label.action').",
                5,
            )
        )
    configured = conf.queues() if not check_queues() else {}
    for spec in registry.all():
        reserved = spec.reserved_parameters()
        if reserved:
            errors.append(
                _error(
                    f"Task {spec.name!r} ({spec.path}) has parameter(s) {reserved} that collide with SAQ job fields.",
                    "Rename the parameter(s); these names are job options.",
                    6,
                )
            )
        if isinstance(spec.on_final_failure, str):  # called only once a job fails for good: found out then
            errors += _import_errors(f"Task {spec.name!r}: on_final_failure", spec.on_final_failure, 31)
        if configured and spec.queue not in configured:
            errors.append(
                _error(
                    f'Task {spec.name!r} uses queue {spec.queue!r}, which is not in SAQ["QUEUES"].',
                    f"Configured queues: {', '.join(configured)}.",
                    7,
                )
            )
    return errors


@checks.register()
def check_job_options(**kwargs: Any) -> list[checks.CheckMessage]:
    errors = []
    errors += unknown_keys('SAQ["DEFAULT_JOB_OPTIONS"]', conf.raw().get("DEFAULT_JOB_OPTIONS", {}), conf.JOB_OPTIONS, 8)
    merged = conf.default_job_options()
    for name in ("timeout", "heartbeat", "ttl", "retries"):
        if merged.get(name) is None:
            errors.append(_error(f'SAQ["DEFAULT_JOB_OPTIONS"]["{name}"] is None; give a whole number >= 0.', "", 8))
    for problem in conf.job_option_problems(merged):
        errors.append(_error(f'SAQ["DEFAULT_JOB_OPTIONS"]: {problem}', "", 8))
    if merged.get("timeout") == 0:
        errors.append(
            checks.Warning(
                'SAQ["DEFAULT_JOB_OPTIONS"]["timeout"] is 0: a job running on a killed worker is never swept.',
                hint="Set a timeout; 300 is the default.",
                id="tasks_app.W001",
            )
        )
    try:
        conf.event_loop()
    except ImproperlyConfigured as exc:
        hint = "Leave it out: the default uses uvloop where it is installed, else asyncio's."
        errors.append(_error(str(exc), hint, 11))
    grace = conf.raw().get("SHUTDOWN_GRACE_PERIOD", conf.DEFAULTS["SHUTDOWN_GRACE_PERIOD"])
    if not isinstance(grace, (int, float)) or grace < 0:
        errors.append(_error(f'SAQ["SHUTDOWN_GRACE_PERIOD"]={grace!r} must be a number of seconds >= 0.', "", 9))
    return errors


@checks.register()
def check_mode(**kwargs: Any) -> list[checks.CheckMessage]:
    try:
        mode = conf.mode()
    except ImproperlyConfigured as exc:
        return [
            _error(
                str(exc),
                f'Leave it out (the default, "{conf.QUEUE}"), or set "{conf.IMMEDIATE}" in test settings only.',
                10,
            )
        ]
    if mode == conf.IMMEDIATE and _in_a_worker():
        return [
            checks.Warning(
                f'SAQ["MODE"] is "{conf.IMMEDIATE}" in a worker: a job that a task enqueues (enqueue, '
                "enqueue_on_commit) runs at once inside that task, instead of going to Redis for any worker.",
                hint=f'Immediate mode is for test settings; remove SAQ["MODE"] (default "{conf.QUEUE}") here.',
                id="tasks_app.W002",
            )
        ]
    return []


@checks.register(checks.Tags.security, deploy=True)
def check_embedded_redis(**kwargs: Any) -> list[checks.CheckMessage]:
    directory = conf.embedded_redis()
    if not any(embedded_redis.serves(directory, queue.url) for queue in conf.queues().values()):
        return []
    return [
        checks.Warning(
            f"A queue uses the embedded development Redis in {directory}: one process on this machine, not "
            "replicated, not for production.",
            hint='Set the queue\'s URL (SAQ["QUEUES"][...]["URL"]) to a Redis of your own.',
            id="tasks_app.W005",
        )
    ]


@checks.register()
def check_memory_policy(**kwargs: Any) -> list[checks.CheckMessage]:
    """In a worker only (it connects to Redis): a queue whose Redis may evict keys can lose accepted jobs."""
    if not _in_a_worker():
        return []
    from django.conf import settings

    messages = []
    for name, queue in conf.queues().items():
        try:
            policy = asyncio.run(_policy_of(queue.url))
        except Exception:  # unreachable: the worker itself says so, naming the setting (exit 2)
            continue
        text = memory_policy.problem(policy, f"{redact_url(queue.url)} (queue {name!r})")
        if text is None:
            continue
        if settings.DEBUG:
            messages.append(
                checks.Warning(text, hint="A warning while DEBUG is on; an error in production.", id="tasks_app.W004")
            )
        else:
            messages.append(_error(text, "Workers refuse to start on it with DEBUG off: jobs would be lost.", 13))
    return messages


async def _policy_of(url: str) -> str:
    client = redis_urls.client(url, socket_timeout=5, socket_connect_timeout=5)
    try:
        return await memory_policy.read_policy(client)
    finally:
        await client.aclose()


def _in_a_worker() -> bool:
    # System checks are not told which command runs them; runworker runs them before it starts.
    return sys.argv[1:2] == ["runworker"]


ENVIRONMENT_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
SETTING_SOURCES_EXAMPLE = (
    'SAQ["SETTING_SOURCES"] = {"QUEUES.default.URL": "REDIS_URL", "DATABASES.default": "DATABASE_URL"}'
)


@checks.register()
def check_setting_sources(**kwargs: Any) -> list[checks.CheckMessage]:
    """``SAQ["SETTING_SOURCES"]``: a dict from a dotted setting path to the environment variable feeding it."""
    sources = conf.raw().get("SETTING_SOURCES", {})
    if not isinstance(sources, dict):
        return [
            _error(f'SAQ["SETTING_SOURCES"] must be a dict, not {type(sources).__name__}.', SETTING_SOURCES_EXAMPLE, 30)
        ]
    errors = []
    for path, variable in sources.items():
        where = f'SAQ["SETTING_SOURCES"][{path!r}]'
        if not isinstance(path, str) or path.split(".")[0] not in conf.SETTING_SOURCE_ROOTS:
            roots = ", ".join(conf.SETTING_SOURCE_ROOTS)
            hint = f"A key is a setting's keys joined by dots, starting with one of {roots}."
            errors.append(_error(f"{where} names no setting tasks_app reads.", hint, 30))
        elif path.startswith("QUEUES.") and not _a_queue_setting(path):
            hint = f"Configured queues: {', '.join(sorted(conf.raw().get('QUEUES') or {}))}."
            errors.append(_error(f"{where} names no configured queue's setting (QUEUES.<queue>.URL).", hint, 30))
        if not isinstance(variable, str) or not ENVIRONMENT_VARIABLE.fullmatch(variable):
            hint = f"The value names the environment variable that feeds the setting: {SETTING_SOURCES_EXAMPLE}"
            errors.append(_error(f"{where} = {variable!r} is not an environment variable's name.", hint, 30))
    return errors


def _a_queue_setting(path: str) -> bool:
    queues = conf.raw().get("QUEUES") or {}
    name, _, option = path.removeprefix("QUEUES.").rpartition(".")
    return isinstance(queues, dict) and name in queues and option in QUEUE_KEYS
