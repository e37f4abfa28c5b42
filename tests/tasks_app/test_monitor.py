"""runworker --web: SAQ's monitor, served by the worker process, answers only on loopback or with credentials,
only its own origin, and says what went wrong without a traceback."""

import json
import urllib.error
import urllib.request

import pytest

from tests.redis_server import free_port

from .helpers import manage

pytestmark = pytest.mark.django_db(transaction=True)


def test_monitor_refuses_to_bind_off_loopback_without_credentials(subprocess_env):
    result = manage("runworker", "--web", "--host", "0.0.0.0", "--skip-checks", env=subprocess_env)
    assert result.returncode != 0
    assert "Refusing to serve SAQ's monitor on 0.0.0.0" in result.stderr


def test_monitor_serves_with_credentials(start_worker, subprocess_env):
    port = free_port()
    env = {**subprocess_env, "TEST_SAQ": json.dumps({"WEB": {"USERNAME": "ops", "PASSWORD": "s3cret"}})}
    worker = start_worker("--web", "--port", str(port), env=env)
    worker.wait_for_output("SIGTERM/SIGINT for a clean stop")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/api/queues", timeout=5)
    assert refused.value.code == 401
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/queues")
    request.add_header("Authorization", "Basic b3BzOnMzY3JldA==")
    with urllib.request.urlopen(request, timeout=5) as response:
        assert json.load(response)["queues"][0]["name"] == "default"


def test_monitor_checks_host_and_origin(start_worker, subprocess_env):
    port = free_port()
    worker = start_worker("--web", "--port", str(port))
    worker.wait_for_output("SIGTERM/SIGINT for a clean stop")
    base = f"http://127.0.0.1:{port}"

    def status(path, method="GET", **headers):
        request = urllib.request.Request(
            base + path, method=method, headers=headers, data=b"" if method == "POST" else None
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code

    assert status("/api/queues") == 200
    assert status("/api/queues", Host="attacker.example") == 400  # DNS rebinding
    abort = "/api/queues/default/jobs/nope/abort"
    assert status(abort, "POST", Origin="http://attacker.example", **{"Content-Type": "text/plain"}) == 403
    assert status(abort, "POST") == 403  # no Origin, no Referer: not from the monitor's own page
    assert status(abort, "POST", Origin=f"http://127.0.0.1:{port}") == 200  # SAQ's own answer (an error body)


def test_monitor_api_errors_say_what_went_wrong_without_a_traceback(start_worker):
    port = free_port()
    worker = start_worker("--web", "--port", str(port))
    worker.wait_for_output(f"monitor (SAQ's web UI) at http://127.0.0.1:{port}/")
    worker.wait_for_output("SIGTERM/SIGINT for a clean stop")
    base = f"http://127.0.0.1:{port}"
    for path, error in [
        ("/api/queues/default/jobs/nope", "Job nope not found"),
        ("/api/queues/elsewhere/jobs/nope", "No queue named 'elsewhere' is served here."),
    ]:
        with urllib.request.urlopen(base + path, timeout=5) as response:
            body = json.load(response)
        assert body == {"error": error}, body
