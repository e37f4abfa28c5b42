"""Browser tests: Debian's Chromium, driven by Playwright, against the site served as in production.

One module-wide set of real parts:

- the static files, collected with the production storage (hashed, compressed) into a
  temporary STATIC_ROOT;
- the site: ``pydotorg.wsgi.application`` with DEBUG off, in a process of its own
  (tests/browser/server.py) on the test database; not pytest-django's ``live_server``,
  whose static handler answers /static/ itself and would hide how WhiteNoise serves it;
- a ``manage.py runworker``, also on the test database and this run's Redis database;
- one Chromium.

Screenshots go to ``<repo>/.artifacts/screenshots``; the run's summary prints the path.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.test import override_settings

from pydotorg import settings as production
from tests.tasks_app.helpers import WorkerProcess

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / ".artifacts" / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
_RUN_STARTED = time.time()


def pytest_terminal_summary(terminalreporter) -> None:
    # Read from the directory, not a flag: with pytest-xdist the screenshots are taken in a
    # worker process and this summary is printed by the controller.
    if SCREENSHOTS.is_dir() and SCREENSHOTS.stat().st_mtime >= _RUN_STARTED:
        terminalreporter.write_sep("-", "browser screenshots")
        terminalreporter.write_line(f"Screenshots of every browser step: {SCREENSHOTS}")


@pytest.fixture(scope="module", autouse=True)
def orm_beside_playwright() -> Iterator[None]:
    # Playwright's sync API keeps an asyncio loop running in this thread, so Django would take
    # every ORM call here for one made inside async code. These calls are plain sync code.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        yield


@pytest.fixture(scope="module")
def screenshots() -> Path:
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)
    SCREENSHOTS.mkdir(parents=True)
    return SCREENSHOTS


@pytest.fixture(scope="module")
def static_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("static")
    with override_settings(STORAGES=production.STORAGES, STATIC_ROOT=root):
        call_command("collectstatic", "--noinput", verbosity=0)
    return root


@pytest.fixture(scope="module")
def site_env(django_db_setup, static_root) -> dict:
    """Environment of the site and worker processes: the test database, this run's Redis database."""
    db = connection.settings_dict  # the test database, once django_db_setup has created it
    url = f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.browser.settings",
        "TEST_DATABASE_URL": url,
        "TEST_REDIS_URL": settings.SAQ["QUEUES"]["default"]["URL"],
        "BROWSER_STATIC_ROOT": str(static_root),
        "PYTHONUNBUFFERED": "1",
    }


class SiteProcess:
    """tests/browser/server.py in a process; ``url`` is where it serves."""

    def __init__(self, env: dict) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.browser.server"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        first = self.process.stdout.readline()
        if not first.startswith("serving "):
            self.process.wait(10)
            raise AssertionError(f"the site did not start:\n{first}{self.process.stdout.read()}")
        self.url = first.split()[1]
        # Keep reading the request log, so a full pipe never blocks the server.
        self.lines: list[str] = []
        threading.Thread(target=lambda: self.lines.extend(self.process.stdout), daemon=True).start()

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()


@pytest.fixture(scope="module")
def site(site_env) -> Iterator[SiteProcess]:
    site = SiteProcess(site_env)
    yield site
    site.stop()


@pytest.fixture(scope="module")
def worker(site_env) -> Iterator[WorkerProcess]:
    queue = redis.Redis.from_url(site_env["TEST_REDIS_URL"])
    queue.flushdb()  # jobs other tests left behind are not this module's to run
    queue.close()
    worker = WorkerProcess(env=site_env)
    worker.wait_for_output("SIGTERM/SIGINT for a clean stop")
    yield worker
    worker.kill()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    # The same script as .ci/run: installs Debian's chromium when it is missing, or says why it cannot.
    found = subprocess.run(
        [ROOT / ".ci" / "chromium"], capture_output=True, text=True, env={**os.environ, "CHROMIUM": CHROMIUM}
    )
    if found.returncode != 0:
        pytest.fail(f"No Chromium for the browser tests: {found.stderr.strip()}")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, site):
    """A fresh browser context (no cookies) on the site; requests that fail are collected in ``page.failures``."""
    context = browser.new_context(base_url=site.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    tab = context.new_page()
    tab.failures = []
    tab.on("response", lambda r: r.status >= 400 and tab.failures.append(f"{r.status} {r.url}"))
    tab.on("requestfailed", lambda r: tab.failures.append(f"failed {r.url}"))
    yield tab
    context.close()
