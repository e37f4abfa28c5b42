"""SAQ's own tests, from the sdist of the SAQ version uv.lock pins, run against tasks_app's queue.

    uv run python tests/saq_conformance/run.py [--baseline] [--keep DIR]

Its Redis queue, worker and job tests run with ``AtomicRedisQueue`` as the queue (``helpers.py``
builds it). Every test must pass, except those in ``deviations.toml``, each listed with the
deliberate difference that makes it fail; a listed test that passes is an error too, so the
list stays true. After a SAQ upgrade this is the one command that says what changed.
``--baseline`` runs the same tests on SAQ's own ``RedisQueue``, to tell a setup problem from a
real difference. Nothing of SAQ's is copied into this repository: the sdist that uv.lock names
is downloaded (and checked against uv.lock's SHA-256) into a cache folder.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import os
import subprocess
import sys
import tarfile
import tempfile
import tomllib
import urllib.request
import xml.etree.ElementTree as ElementTree
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "pydotorg-saq-conformance"
SUITES = ["tests/test_queue.py", "tests/test_worker.py", "tests/test_job.py"]
# SAQ's Postgres queue (and the HTTP proxy in front of it) is not the queue this project replaces;
# test_pandas needs pandas, which neither SAQ nor this project depends on.
DESELECT = "not Postgres and not HttpPoll and not test_pandas"


def pinned() -> dict:
    """SAQ's entry in uv.lock: its version and its sdist's URL and hash."""
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    package = next(package for package in lock["package"] if package["name"] == "saq")
    installed = importlib.metadata.version("saq")
    if installed != package["version"]:
        sys.exit(f"SAQ {installed} is installed but uv.lock pins {package['version']}: run `uv sync`.")
    return package


def sdist(package: dict) -> Path:
    """The sdist uv.lock names, downloaded once into the cache and checked against its hash."""
    url, expected = package["sdist"]["url"], package["sdist"]["hash"].removeprefix("sha256:")
    path = CACHE / url.rsplit("/", 1)[1]
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        with urllib.request.urlopen(url, timeout=60) as response:
            path.write_bytes(response.read())
    if hashlib.sha256(path.read_bytes()).hexdigest() != expected:
        path.unlink()
        sys.exit(f"{path.name} does not match the hash in uv.lock; deleted it, run again.")
    return path


def unpack(archive: Path, into: Path, baseline: bool) -> Path:
    with tarfile.open(archive) as tar:
        members = [m for m in tar.getmembers() if "/tests/" in m.name and m.isfile()]
        tar.extractall(into, members=members, filter="data")
    top = next(into.iterdir())
    helpers = (HERE / "helpers.py").read_text()
    if baseline:
        helpers = helpers.replace(
            "from tasks_app.engine.queue import AtomicRedisQueue",
            "from saq.queue.redis import RedisQueue as AtomicRedisQueue",
        )
    (top / "tests" / "helpers.py").write_text(helpers)
    # Only tests/ is unpacked: an empty config keeps pytest from reading this project's.
    (top / "pytest.ini").write_text("[pytest]\n")
    (top / "conftest.py").write_text(FREEZE_AFTER_COLLECTION)
    return top


# Some of SAQ's tests give a job 50 ms to be seen running, on one event loop with the worker (and, for
# TestHttpRedis, an HTTP server): a pause of the whole process longer than that fails them whatever the
# queue. This process's own full garbage collections were such pauses: 30 to 60 ms each, about nine a run
# (gc.callbacks, measured on a quiet machine), over the 110,000 objects that pytest, aiohttp and SAQ's test
# modules leave once imported; one landing in test_worker.py::TestHttpRedis::test_start let its sleeper
# finish before the worker's stop cancelled it (2 CI runs of 4). The queue under test makes no such
# garbage: a runworker running 20,000 jobs collected 904 objects in all, in one full collection. Frozen
# after collection, those objects are not traversed again: full collections take 8 to 15 ms.
FREEZE_AFTER_COLLECTION = """\
import gc


def pytest_collection_finish(session):
    gc.collect()
    gc.freeze()  # written by tests/saq_conformance/run.py: see FREEZE_AFTER_COLLECTION there
"""


def outcomes(report: Path) -> dict[str, str]:
    """test id ("test_queue.py::TestRedisQueue::test_abort") -> "passed", "failed" or "skipped"."""
    results = {}
    for case in ElementTree.parse(report).getroot().iter("testcase"):
        classname = case.get("classname", "").removeprefix("tests.")
        module, _, cls = classname.partition(".")
        test_id = f"{module}.py::{cls}::{case.get('name')}"
        if case.find("failure") is not None or case.find("error") is not None:
            results[test_id] = "failed"
        elif case.find("skipped") is not None:
            results[test_id] = "skipped"
        else:
            results[test_id] = "passed"
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", action="store_true", help="run on SAQ's own RedisQueue instead")
    parser.add_argument("--keep", type=Path, help="unpack into this folder and keep it")
    args = parser.parse_args()
    package = pinned()
    version = package["version"]
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="saq-conformance-"))
    top = unpack(sdist(package), workdir, args.baseline)
    report = workdir / "report.xml"
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    env["PROJECT_ROOT"] = str(ROOT)
    print(f"SAQ {version}: running its tests against {'RedisQueue' if args.baseline else 'AtomicRedisQueue'}")
    subprocess.run(
        [sys.executable, "-m", "pytest", *SUITES, "-k", DESELECT, "-p", "no:django", "-p", "no:cacheprovider",
         "-o", "addopts=", "-q", "--timeout", "120", f"--junitxml={report}", "--rootdir", str(top),
         "-c", str(top / "pytest.ini")],
        cwd=top, env=env, check=False,
    )  # fmt: skip
    if not report.exists():
        sys.exit("SAQ's tests did not run (see pytest's message above).")
    results = outcomes(report)
    deviations = tomllib.loads((HERE / "deviations.toml").read_text())
    failed = {test for test, outcome in results.items() if outcome == "failed"}
    passed = {test for test, outcome in results.items() if outcome == "passed"}
    print(f"\n{len(passed)} passed, {len(failed)} failed, {len(results) - len(passed) - len(failed)} skipped")
    if args.baseline:
        return 1 if failed else 0
    unexplained = sorted(failed - set(deviations))
    stale = sorted(set(deviations) & passed)
    missing = sorted(set(deviations) - set(results))
    for test in sorted(failed & set(deviations)):
        print(f"  deviation  {test}: {deviations[test]['reason']}")
    for test in unexplained:
        print(f"  FAILED     {test}: not a listed deviation: a regression, or list it in deviations.toml with why")
    for test in stale:
        print(f"  STALE      {test}: passes now; remove it from deviations.toml")
    for test in missing:
        print(f"  MISSING    {test}: listed in deviations.toml but SAQ {version} has no such test")
    return 1 if unexplained or stale or missing else 0


if __name__ == "__main__":
    sys.exit(main())
