"""The older SAQ document's entry points (``pydotorg/tasks/``): its worker command runs ``runworker``
with the flags mapped, and its ``queue`` import says what to use instead."""

import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pydotorg.tasks.worker import runworker_argv
from tests.tasks_app.helpers import ROOT

SETTINGS = "pydotorg.tasks.worker.settings_dict"


@pytest.mark.parametrize(
    ("saq_flags", "expected"),
    [
        ([], []),
        (["--verbose"], ["-v", "2"]),  # the README's table: "verbose logging" is DEBUG
        (["-vv"], ["-v", "3"]),
        (["--web"], ["--web"]),
        (["--web", "--port", "8080"], ["--web", "--port", "8080"]),
        (["--workers", "3"], ["--workers", "3"]),
        (["--workers", "1"], []),
        (["--check", "--web", "-v"], ["--check"]),
    ],
)
def test_saq_flags_become_runworker_flags(saq_flags, expected):
    assert runworker_argv([SETTINGS, *saq_flags]) == (expected, [])


def test_flags_runworker_has_no_use_for_are_named():
    argv, notes = runworker_argv([SETTINGS, "-e", "other.settings", "--quiet", "--port", "9000"])
    assert argv == []
    assert [note.split(":")[0] for note in notes] == ["--port without --web", "--extra-web-settings", "--quiet"]


def test_flags_saq_refuses_are_refused_the_same_way():
    with pytest.raises(SystemExit) as exit_info:
        runworker_argv([SETTINGS, "--workers", "two"])
    assert exit_info.value.code == 2


@pytest.mark.parametrize(
    "saq", [[str(Path(sys.executable).parent / "saq")], [sys.executable, "-m", "saq"]], ids=["script", "module"]
)
def test_the_documents_worker_command_runs_runworker(subprocess_env, saq):
    # --check: runworker's health check answers (exit 1: the queue has no live worker) in place of SAQ's.
    result = subprocess.run(
        [*saq, SETTINGS, "--check"], cwd=ROOT, env=subprocess_env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1, result.stderr
    assert f"saq {SETTINGS} runs this project's worker: python manage.py runworker --check" in result.stderr
    assert "queue 'default': NO live workers" in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_settings_dict_read_outside_the_saq_cli_runs_nothing_and_names_runworker():
    import pydotorg.tasks.worker as worker

    with pytest.raises(ImportError, match=r"manage\.py runworker"):
        worker.settings_dict  # noqa: B018


def test_the_documents_queue_import_names_tasks_apps_calls():
    with pytest.raises(ImportError, match=r"from tasks_app import aenqueue, enqueue, enqueue_on_commit"):
        from pydotorg.tasks import queue  # noqa: F401


@pytest.mark.parametrize(
    ("argv", "named", "why"),
    [
        (["pydotorg.tasks.worker.setting_dict"], "pydotorg.tasks.worker.setting_dict", "not a worker's settings here"),
        (["pydotorg.tasks.worker"], "pydotorg.tasks.worker", "not a worker's settings here"),
        (["pydotorg.tasks.queue"], "pydotorg.tasks.queue", "not a worker's settings here"),
        # Flags first, and forked processes that read the settings too: still one line.
        (
            ["--workers", "3", "pydotorg.tasks.worker.setting_dict"],
            "pydotorg.tasks.worker.setting_dict",
            "not a worker's settings here",
        ),
        (
            ["pydotorg.tasks.feeds.settings"],
            "pydotorg.tasks.feeds",
            "pydotorg.tasks.feeds is the older SAQ document's module: here, "
            "`from pydotorg.blogs.tasks import refresh_all_feeds, refresh_single_feed`",
        ),
    ],
)
def test_a_settings_path_near_the_documents_is_one_line_naming_it(subprocess_env, argv, named, why):
    result = subprocess.run(
        [str(Path(sys.executable).parent / "saq"), *argv],
        cwd=ROOT, env=subprocess_env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert result.stderr == (
        f"saq {named}: {why}. The older SAQ document's worker command is "
        f"`saq {SETTINGS}`, which runs this project's `python manage.py runworker`.\n"
    )


@pytest.mark.parametrize(
    ("module", "now"),
    [
        ("pydotorg.tasks.feeds", "from pydotorg.blogs.tasks import refresh_all_feeds, refresh_single_feed"),
        ("pydotorg.tasks.search", "from pydotorg.search.tasks import rebuild_search_index, index_content"),
    ],
)
def test_the_documents_task_modules_name_where_their_tasks_are(module, now):
    with pytest.raises(ImportError, match=re.escape(f"{module} is the older SAQ document's module: here, `{now}`")):
        importlib.import_module(module)
    importlib.import_module(now.split()[1])  # and that is where they are
