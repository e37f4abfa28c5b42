"""The dashboard and the metrics are optional sub-apps: a project with ``tasks_app`` alone checks, starts
workers, enqueues and runs jobs without importing either, and counts nothing."""

import json
import subprocess
import sys

from django.contrib import admin
from django.urls import reverse

from tasks_app.models import TaskQueue
from tests import queue_state

from .helpers import ROOT, manage
from .test_layout import imports_of, modules

ONLY_TASKS_APP = "tests.tasks_app.workers_only_settings"
# In one process: the system checks, a job enqueued, a burst worker built and run (the start-up
# runworker does: database, Redis, cron, hooks), then what was imported.
SCRIPT = """
import json, sys
import django
django.setup()
from django.core.management import call_command
from tasks_app import enqueue
call_command("check")
job = enqueue("greet", name="core")
call_command("runworker", "--burst", "--skip-checks", "-v", "0")
optional = sorted(m for m in sys.modules if m.startswith(("tasks_app.dashboard", "tasks_app.metrics")))
from django.contrib import admin
from tasks_app.models import TaskQueue
print(json.dumps({"key": job.key, "optional": optional, "in_admin": TaskQueue in admin.site._registry}))
"""


def test_a_project_with_tasks_app_alone_imports_neither_sub_app(subprocess_env, redis_db):
    env = {**subprocess_env, "DJANGO_SETTINGS_MODULE": ONLY_TASKS_APP}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["optional"] == [] and found["in_admin"] is False
    job = queue_state.stored(found["key"])
    assert (job.status.value, job.result) == ("complete", "hello core")
    assert not redis_db.exists("saq:default:metrics")  # no tasks_app.metrics: nothing counted


def test_runworker_check_and_the_commands_run_with_tasks_app_alone(start_worker, subprocess_env):
    env = {**subprocess_env, "DJANGO_SETTINGS_MODULE": ONLY_TASKS_APP}
    assert manage("check", env=env).returncode == 0
    worker = start_worker(env=env)
    worker.wait_for_output("SIGTERM/SIGINT for a clean stop")
    checked = manage("runworker", "--check", env=env)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    paused = manage("pausequeue", "default", env=env)
    assert paused.returncode == 0 and "is paused" in paused.stdout


def test_with_the_sub_apps_installed_the_dashboard_and_its_metrics_are_in_the_admin():
    assert TaskQueue in admin.site._registry
    assert reverse("admin:tasks_app_dashboard_metrics").endswith("/admin/tasks_app/taskqueue/metrics")


def test_nothing_below_imports_the_sub_apps():
    """Function-level imports included. The dashboard may import the metrics, to serve them."""
    found = modules()
    importers = {
        "tasks_app.dashboard": ("tasks_app.dashboard",),
        "tasks_app.metrics": ("tasks_app.metrics", "tasks_app.dashboard"),
    }
    offenders = [
        f"{name} imports {target}"
        for name, path in found.items()
        for target in imports_of(name, path, set(found))
        for sub_app, allowed in importers.items()
        if (target == sub_app or target.startswith(f"{sub_app}.")) and not name.startswith(allowed)
    ]
    assert offenders == []
