"""rediss:// with a CA and client certificates, as an ACL user limited to saq:* keys and channels and no
@dangerous command but INFO: the whole job path, and the documented ACL SETUSER line, on a real TLS Redis
(tests/redis_topology.py makes the certificates with openssl)."""

import re
import shlex
from pathlib import Path

import pytest
from django.db import transaction
from django.urls import reverse

from tasks_app import enqueue, enqueue_many, enqueue_on_commit
from tasks_app.enqueueing.connections import background, get_queue
from tests.redis_topology import TLSRedis
from tests.sampleapp.models import Note

from .helpers import ROOT, manage, wait_until

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "w0rker-secret"


def documented_acl_line() -> str:
    """The ACL SETUSER line docs/operating.md gives (the test runs exactly that line)."""
    text = (ROOT / "docs" / "operating.md").read_text()
    [line] = re.findall(r"^ACL SETUSER tasks_app .*$", text, flags=re.M)
    return line


def create_user(server: TLSRedis, line: str, *, without: str = "") -> None:
    words = shlex.split(line.replace("<password>", PASSWORD))[2:]  # after ACL SETUSER
    if without:
        words.append(f"-{without}")
    server.admin().execute_command("ACL", "SETUSER", *words)


@pytest.fixture
def tls(tmp_path: Path):
    with TLSRedis(tmp_path) as server:
        yield server


def test_the_whole_job_path_runs_as_the_documented_acl_user_over_tls(
    tls, settings, subprocess_env, start_worker, client
):
    create_user(tls, documented_acl_line())
    url = tls.url("tasks_app", PASSWORD)
    settings.SAQ = {**settings.SAQ, "QUEUES": {"default": {"URL": url}}, "API_TOKEN": "t0ken"}
    env = {**subprocess_env, "TEST_REDIS_URL": url}
    assert manage("enqueue", "add_note", "text=acl command", env=env).returncode == 0
    single = enqueue("add_note", text="acl single")
    enqueue_many("add_note", [{"text": "acl bulk 1"}, {"text": "acl bulk 2"}])
    with transaction.atomic():
        enqueue_on_commit("add_note", text="acl on commit")
    enqueue("flaky", fail_times=1)  # a retry written by the worker
    worker = start_worker(env=env)
    worker.wait_for_output("SIGTERM/SIGINT for a clean stop")
    texts = ["acl command", "acl single", "acl bulk 1", "acl bulk 2", "acl on commit"]
    wait_until(lambda: Note.objects.filter(text__in=texts).count() == 5, timeout=30, message="every job")

    async def read(key: str):
        return await get_queue("default").job(key)

    stored = wait_until(
        lambda: (job := background.run(read(single.key))) and job.status == "complete" and job, message="the result"
    )
    assert stored.result["id"] == Note.objects.get(text="acl single").pk
    check = manage("runworker", "--check", env=env)
    assert check.returncode == 0, check.stderr
    assert f"primary 127.0.0.1:{tls.port}" in check.stdout
    for command in ("pausequeue", "resumequeue"):
        assert manage(command, "default", env=env).returncode == 0
    stats = client.get(reverse("admin:tasks_app_dashboard_stats"), headers={"Authorization": "Bearer t0ken"})
    assert stats.status_code == 200, stats.content
    assert stats.json()["connections"][0]["primary"] == f"127.0.0.1:{tls.port}"
    admin = tls.admin()
    # Nothing was refused (no key outside saq:, no command the line leaves out) but CONFIG GET, which the
    # memory-policy check tries first and then reads INFO memory instead (engine/memory_policy.py).
    refused = {(entry["reason"], entry["object"]) for entry in admin.acl_log()}
    assert refused <= {("command", "config|get")}, refused
    assert all(key.startswith(b"saq:") for key in admin.keys("*"))
    assert PASSWORD not in worker.output and PASSWORD not in check.stdout + check.stderr


def test_the_documented_line_grants_no_dangerous_command_but_info(tls):
    create_user(tls, documented_acl_line())
    admin = tls.admin()
    dangerous = [name.decode() for name in admin.command_list(category="dangerous")]
    allowed = [name for name in dangerous if dry_run(admin, name) == b"OK"]
    assert allowed == ["info"]
    refused = admin.execute_command("ACL", "DRYRUN", "tasks_app", "get", "other:key").decode()
    assert "no permissions to access the 'other:key' key" in refused


def dry_run(admin, name: str):
    """ACL DRYRUN of command ``name`` (``config|get``: a subcommand) with as many saq: arguments as it needs."""
    words = name.split("|")
    entry = admin.command()[words[0]]
    arity = entry["arity"]
    for sub in entry["subcommands"]:
        if sub[0].decode() == name:
            arity = int(sub[1])
    needed = max(abs(int(arity)) - len(words), 0)
    return admin.execute_command("ACL", "DRYRUN", "tasks_app", *words, *["saq:probe"] * needed)


def test_a_missing_tls_file_is_a_check_error_and_a_one_line_refusal(tls, subprocess_env):
    url = tls.url("tasks_app", PASSWORD).replace(str(tls.files["ca"]).replace("/", "%2F"), "%2Fnowhere%2Fca.pem")
    env = {**subprocess_env, "TEST_REDIS_URL": url}
    check = manage("check", env=env)
    assert check.returncode != 0 and "tasks_app.E014" in check.stderr
    assert "names ssl_ca_certs='/nowhere/ca.pem', which does not exist" in check.stderr
    assert "TEST_REDIS_URL" in check.stderr and PASSWORD not in check.stderr
    worker = manage("runworker", "--burst", "--skip-checks", env=env)
    assert worker.returncode == 2 and "Traceback" not in worker.stderr and PASSWORD not in worker.stderr
    assert "/nowhere/ca.pem" in worker.stderr and "TEST_REDIS_URL" in worker.stderr


# blmove: the probe sends it on a list of one entry (where it never blocks); an ACL refuses it there too.
@pytest.mark.parametrize("command", ["evalsha", "blmove"])
def test_an_acl_user_lacking_a_needed_command_is_told_which_at_start_up(tls, subprocess_env, command):
    create_user(tls, documented_acl_line(), without=command)
    env = {**subprocess_env, "TEST_REDIS_URL": tls.url("tasks_app", PASSWORD)}
    for args in (("runworker", "--burst", "--skip-checks"), ("runworker", "--check")):
        result = manage(*args, env=env)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert f"no permissions to run the '{command}' command)" in result.stderr, result.stderr
        assert "ACL SETUSER" in result.stderr and "pipeline" not in result.stderr, result.stderr
        assert "TEST_REDIS_URL" in result.stderr and "Traceback" not in result.stderr
        assert PASSWORD not in result.stderr
