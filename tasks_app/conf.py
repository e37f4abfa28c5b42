"""The ``SAQ`` settings dict, with its defaults, read in one place.

Every other module asks this one; nothing else reads ``settings.SAQ``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from .queue_urls import DEFAULT_WAIT_TIMEOUT_MS, split_url_options

DEFAULT_QUEUE = "default"

# Job options a task or the settings may set; they reach SAQ's Job unchanged,
# except ``retries``, which counts retries after the first attempt (SAQ counts attempts).
JOB_OPTIONS = ("timeout", "retries", "retry_delay", "retry_backoff", "ttl", "heartbeat", "priority")

# A job's priority: higher runs first within its queue (Django's tasks range; engine/priorities.py).
MIN_PRIORITY, MAX_PRIORITY = -100, 100

# The longest ttl, timeout, heartbeat or delay a job may have: ten years, in seconds. Anything
# longer is a mistake, and far longer values overflow Redis's EX and Python's datetime.
MAX_SECONDS = 10 * 365 * 24 * 3600


def seconds_problem(name: str, value: Any) -> str | None:
    """What is wrong with ``value`` as a number of seconds from 0 to ``MAX_SECONDS`` (``retry_delay``,
    a call's ``delay``), or None. A bool, an infinity or NaN is not one."""
    if _number(value) and 0 <= value <= MAX_SECONDS:
        return None
    return f"{name}={value!r} must be a number of seconds from 0 to {MAX_SECONDS}."


def job_option_problems(options: dict[str, Any]) -> list[str]:
    """What is wrong with job option values, one message per bad option (empty if none).

    ``timeout``, ``heartbeat``, ``ttl`` and ``retries`` are whole numbers >= 0; ``retry_delay`` a
    finite number of seconds >= 0; ``retry_backoff`` True/False or a cap in seconds; ``priority`` a whole
    number from ``MIN_PRIORITY`` to ``MAX_PRIORITY``. Seconds are at
    most ``MAX_SECONDS``. Names outside ``JOB_OPTIONS`` and ``None`` values (not given) are ignored.
    """
    problems = []
    for name, value in options.items():
        if value is None or name not in JOB_OPTIONS:
            continue
        if name == "priority":
            if not (isinstance(value, int) and not isinstance(value, bool) and MIN_PRIORITY <= value <= MAX_PRIORITY):
                problems.append(
                    f"priority={value!r} must be a whole number from {MIN_PRIORITY} to {MAX_PRIORITY} "
                    "(higher runs first; 0, the default, costs nothing)."
                )
            continue
        if name == "retry_delay":
            if problem := seconds_problem(name, value):
                problems.append(problem)
            continue
        if name in ("timeout", "heartbeat", "ttl", "retries"):
            ok = _number(value) and isinstance(value, int) and 0 <= value <= MAX_SECONDS
            what = "a whole number >= 0" if name == "retries" else f"a whole number of seconds from 0 to {MAX_SECONDS}"
        else:  # retry_backoff
            ok = isinstance(value, bool) or (_number(value) and 0 <= value <= MAX_SECONDS)
            what = f"True, False or a cap in seconds from 0 to {MAX_SECONDS}"
        if not ok:
            problems.append(f"{name}={value!r} must be {what}.")
    return problems


def _number(value: Any) -> bool:
    """A finite int or float, not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


DEFAULT_JOB_OPTIONS: dict[str, Any] = {
    "timeout": 300,  # every job has one, so a killed worker's job is always swept
    "heartbeat": 30,  # the worker touches running jobs; a silent job is swept after this
    "retries": 3,  # retries after the first attempt
    "retry_delay": 1.0,  # first retry after ~1 s, then doubling (with jitter)
    "retry_backoff": 300,  # ... capped at 5 minutes
    "ttl": 7 * 24 * 3600,  # finished jobs (and failures) are kept a week
}

DEFAULT_CONCURRENCY = 10  # jobs a worker runs at once per queue, unless the queue or ?concurrency=N says (at most
# queue_urls.MAX_CONCURRENCY)

DEFAULT_TIMERS = {"schedule": 1, "worker_info": 10, "sweep": 10, "abort": 1, "outbox": 5}

# SAQ["MODE"]: "queue" sends jobs to Redis for the workers; "immediate" (for test settings) runs each
# job at once in the process that enqueues it (tasks_app.enqueueing.inline).
QUEUE, IMMEDIATE = "queue", "immediate"
MODES = (QUEUE, IMMEDIATE)

DEFAULTS: dict[str, Any] = {
    "QUEUES": {DEFAULT_QUEUE: {"URL": "redis://localhost:6379/0"}},
    "DEFAULT_JOB_OPTIONS": DEFAULT_JOB_OPTIONS,
    "CRON_JOBS": [],
    "TASK_FUNCTIONS": [],
    "HOOKS": {"startup": [], "shutdown": [], "before_process": [], "after_process": []},
    "SHUTDOWN_GRACE_PERIOD": 30,
    "TIMERS": DEFAULT_TIMERS,
    "WEB": {"USERNAME": None, "PASSWORD": None, "ALLOWED_HOSTS": []},
    # "auto": uvloop where it is installed (it is a dependency on Linux and macOS), else asyncio's.
    "EVENT_LOOP": "auto",
    "MODE": QUEUE,
    # A directory for a development Redis tasks_app starts itself (tasks_app/embedded_redis.py), or None.
    "EMBEDDED_REDIS": None,
}

HOOK_NAMES = ("startup", "shutdown", "before_process", "after_process")


@dataclass(frozen=True)
class QueueConfig:
    name: str
    url: str
    concurrency: int
    # Replicas that must confirm each enqueueing write (Redis's WAIT), and how long to wait for them (ms).
    wait_replicas: int = 0
    wait_timeout: int = DEFAULT_WAIT_TIMEOUT_MS


@dataclass(frozen=True)
class CronConfig:
    task: str
    cron: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)


def raw() -> dict[str, Any]:
    from django.conf import settings

    return getattr(settings, "SAQ", None) or {}


def _merged(name: str) -> Any:
    value = raw().get(name, DEFAULTS[name])
    if isinstance(DEFAULTS[name], dict) and isinstance(value, dict) and name != "QUEUES":
        return {**DEFAULTS[name], **value}
    return value


def queues() -> dict[str, QueueConfig]:
    """Configured queues by name. A ``?concurrency=N`` in a URL sets that queue's concurrency."""
    result = {}
    for name, options in _merged("QUEUES").items():
        options = options if isinstance(options, dict) else {"URL": options}
        url, given = split_url_options(options.get("URL"), setting=setting_name("QUEUES", name, "URL"))
        concurrency = options.get("CONCURRENCY")  # None: the URL's ?concurrency=N, else the default
        concurrency = given.get("concurrency") or DEFAULT_CONCURRENCY if concurrency is None else concurrency
        replicas = options.get("WAIT_REPLICAS", given.get("wait_replicas", 0))
        timeout = options.get("WAIT_TIMEOUT", given.get("wait_timeout", DEFAULT_WAIT_TIMEOUT_MS))
        for key, value, least in (
            ("CONCURRENCY", concurrency, 1),
            ("WAIT_REPLICAS", replicas, 0),
            ("WAIT_TIMEOUT", timeout, 1),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < least:
                raise ImproperlyConfigured(
                    f'SAQ["QUEUES"]["{name}"]["{key}"]={value!r} must be a whole number of at least {least}.'
                )
        result[name] = QueueConfig(
            name=name, url=url or "", concurrency=int(concurrency), wait_replicas=replicas, wait_timeout=timeout
        )
    return result


def queue_config(name: str) -> QueueConfig:
    configured = queues()
    if name not in configured:
        raise ImproperlyConfigured(
            f'Unknown queue {name!r}; configured queues are {sorted(configured)}. Add it to SAQ["QUEUES"].'
        )
    return configured[name]


def default_job_options() -> dict[str, Any]:
    return dict(_merged("DEFAULT_JOB_OPTIONS"))


def cron_jobs() -> list[CronConfig]:
    jobs = []
    for entry in _merged("CRON_JOBS"):
        options = {k: v for k, v in entry.items() if k in JOB_OPTIONS}
        jobs.append(
            CronConfig(
                task=entry["task"],
                cron=entry["cron"],
                kwargs=dict(entry.get("kwargs") or {}),
                options=options,
            )
        )
    return jobs


def task_functions() -> list[str]:
    return list(_merged("TASK_FUNCTIONS"))


def hooks() -> dict[str, list[str]]:
    configured = _merged("HOOKS")
    return {
        name: [configured[name]] if isinstance(configured.get(name), str) else list(configured.get(name) or [])
        for name in HOOK_NAMES
    }


def shutdown_grace_period() -> float:
    return float(_merged("SHUTDOWN_GRACE_PERIOD"))


def timers() -> dict[str, float]:
    """``SAQ["TIMERS"]``: seconds between runs of each worker chore. Raises ``ImproperlyConfigured`` for a
    value that is not a number of seconds above 0 (0 made a chore spin, holding the event loop)."""
    merged = dict(_merged("TIMERS"))
    if problems := timer_problems(merged):
        raise ImproperlyConfigured(" ".join(problems))
    return merged


def timer_problems(merged: dict[str, Any] | None = None) -> list[str]:
    """What is wrong with each of ``SAQ["TIMERS"]``'s values (check E012 says it too)."""
    merged = dict(_merged("TIMERS")) if merged is None else merged
    return [
        f'SAQ["TIMERS"]["{name}"]={value!r} must be a number of seconds above 0 and at most {MAX_SECONDS} '
        f"(default {DEFAULT_TIMERS[name]})."
        for name, value in merged.items()
        if name in DEFAULT_TIMERS and not (_number(value) and 0 < value <= MAX_SECONDS)
    ]


def web_credentials() -> tuple[str | None, str | None]:
    web = _merged("WEB")
    return web.get("USERNAME"), web.get("PASSWORD")


EVENT_LOOPS = ("auto", "uvloop", "asyncio")


def uvloop_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("uvloop") is not None


def event_loop() -> str:
    """The event loop workers run on: "uvloop" or "asyncio" (``SAQ["EVENT_LOOP"]``, "auto" resolved).
    Raises ``ImproperlyConfigured`` for a value not in ``EVENT_LOOPS``, or "uvloop" where it is not
    installed, so that a typo fails loudly (even under ``--skip-checks``) instead of running asyncio's."""
    chosen = _merged("EVENT_LOOP")
    if chosen not in EVENT_LOOPS:
        raise ImproperlyConfigured(f'SAQ["EVENT_LOOP"]={chosen!r} is not one of {", ".join(EVENT_LOOPS)}.')
    if chosen == "uvloop" and not uvloop_installed():
        raise ImproperlyConfigured('SAQ["EVENT_LOOP"] is "uvloop", but uvloop is not installed.')
    if chosen == "auto":
        return "uvloop" if uvloop_installed() else "asyncio"
    return chosen


def web_allowed_hosts() -> list[str]:
    """Extra ``Host`` values (``name:port``) the ``--web`` monitor answers, e.g. behind a proxy."""
    return [str(host) for host in _merged("WEB").get("ALLOWED_HOSTS") or []]


def embedded_redis() -> str | None:
    """``SAQ["EMBEDDED_REDIS"]``: the directory of the development Redis tasks_app starts, or None."""
    value = _merged("EMBEDDED_REDIS")
    return str(value) if value else None


def mode() -> str:
    """``SAQ["MODE"]``: ``QUEUE`` (the default) or ``IMMEDIATE``. Raises ``ImproperlyConfigured`` for
    anything else, so a typo in test settings fails loudly instead of sending jobs to Redis."""
    value = _merged("MODE")
    if value not in MODES:
        raise ImproperlyConfigured(f'SAQ["MODE"]={value!r} must be one of {", ".join(map(repr, MODES))}.')
    return value


# --- naming settings in messages ---------------------------------------------------------------------
# tasks_app knows nothing of the project around it, so its messages name its own settings. A project
# whose settings are filled from environment variables says which one feeds each setting, in
# SAQ["SETTING_SOURCES"] ({"QUEUES.default.URL": "REDIS_URL"}), so that its operators read that too.

# A path's first part: a key of SAQ, or DATABASES (Django's setting, the only one outside SAQ).
SETTING_SOURCE_ROOTS = ("DATABASES", "API_TOKEN", *DEFAULTS)


def setting_sources() -> dict[str, str]:
    """``SAQ["SETTING_SOURCES"]``: environment variable by dotted setting path; {} if unset or malformed
    (``checks.check_setting_sources`` reports a malformed one)."""
    value = raw().get("SETTING_SOURCES") or {}
    return (
        {k: v for k, v in value.items() if isinstance(k, str) and isinstance(v, str)} if isinstance(value, dict) else {}
    )


def setting_name(*path: str) -> str:
    """A setting as tasks_app's messages name it, and the environment variable that feeds it, if known.

    ``path`` is a setting's keys: inside ``SAQ`` (``("QUEUES", "default", "URL")``, ``("API_TOKEN",)``), or
    Django's ``DATABASES`` (``("DATABASES", "default")``). Returns e.g. ``SAQ["QUEUES"]["default"]["URL"]``,
    followed by `` (set from the environment variable X)`` when ``SAQ["SETTING_SOURCES"]`` maps its path to X:
    SAQ["SETTING_SOURCES"] = {"QUEUES.default.URL": "REDIS_URL"} adds "(set from the environment variable REDIS_URL)".
    """
    root = "" if path[0] == "DATABASES" else "SAQ"
    name = (root or path[0]) + "".join(f'["{part}"]' for part in (path if root else path[1:]))
    source = setting_sources().get(".".join(path))
    return f"{name} (set from the environment variable {source})" if source else name
