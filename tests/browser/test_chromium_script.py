""".ci/chromium: what .ci/run and the browser tests use to have a Chromium, or to say why not."""

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(**environ) -> subprocess.CompletedProcess:
    env = {**os.environ, **environ}
    return subprocess.run([ROOT / ".ci" / "chromium"], capture_output=True, text=True, env=env, timeout=600)


def test_it_prints_the_chromium_it_found_or_installed():
    result = run(CHROMIUM="/usr/bin/chromium")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "/usr/bin/chromium" and os.access("/usr/bin/chromium", os.X_OK)


def test_a_chromium_path_that_is_not_there_is_an_error_naming_the_variable(tmp_path):
    result = run(CHROMIUM=str(tmp_path / "nope"))
    assert result.returncode == 1
    assert f"CHROMIUM={tmp_path / 'nope'} is not an executable file" in result.stderr
