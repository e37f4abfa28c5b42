"""runserver refuses a port out of range with Django's kind of one-line error, before binding."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("debug", ["true", "false"])
@pytest.mark.parametrize(("addrport", "port"), [("127.0.0.1:99999", "99999"), ("0", "0"), ("65536", "65536")])
def test_a_port_out_of_range_is_a_command_error(tmp_path, debug, addrport, port):
    # 127.0.0.1:99999 was a traceback (OverflowError from bind()), and with DEBUG on the process hung after it.
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "pydotorg.settings",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "DEBUG": debug,
        "SECRET_KEY": "a-long-random-test-key-" + "x" * 40,
        "STATIC_ROOT": str(tmp_path / "static"),
    }
    args = [sys.executable, "manage.py", "runserver", addrport] + ([] if debug == "true" else ["--noreload"])
    if debug == "false":
        subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"], cwd=ROOT, env=env)
    # A session of its own: a server that did start (the reloader's child too) is stopped with it.
    process = subprocess.Popen(
        args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        _, stderr = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        pytest.fail(f"runserver {addrport} was still running after 30 s")
    assert process.returncode == 1, stderr
    assert "Traceback" not in stderr, stderr
    assert stderr.endswith(f"CommandError: '{port}' is not a valid port number: use one from 1 to 65535.\n")
