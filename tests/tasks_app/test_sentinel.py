"""Queues behind Redis Sentinel: the URL form, the whole job path, a failover under a running worker,
and each bad setting as one line. Real redis-servers and sentinels (tests/redis_topology.py)."""

import contextlib
import threading
import time

import pytest
import redis
from django.contrib.auth.models import User
from django.core import checks
from django.urls import reverse

from tasks_app import enqueue, redis_urls
from tasks_app.enqueueing import connections
from tasks_app.enqueueing.connections import background
from tasks_app.exceptions import ReplicasNotConfirmed
from tasks_app.redaction import redact_url
from tests.redis_server import free_port
from tests.redis_topology import SentinelTopology
from tests.sampleapp.models import Note

from .helpers import manage, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def topology(tmp_path):
    with SentinelTopology(tmp_path, replicas=2) as started:
        yield started


def use_queue_url(settings, url: str) -> None:
    settings.SAQ = {**settings.SAQ, "QUEUES": {"default": {"URL": url}}}


# --- the URL --------------------------------------------------------------------------------------


def test_a_sentinel_url_names_sentinels_service_database_and_both_passwords():
    parsed = redis_urls.parse_sentinel(
        "redis+sentinel://worker:s3cret@10.0.0.1:26379,[::1]:26380/mymaster/3?sentinel_password=p2&socket_timeout=2"
    )
    assert parsed.sentinels == (("10.0.0.1", 26379), ("::1", 26380))
    assert (parsed.service, parsed.db, parsed.username, parsed.password) == ("mymaster", 3, "worker", "s3cret")
    assert parsed.sentinel_password == "p2" and parsed.options == {"socket_timeout": 2.0}
    assert redis_urls.parse_sentinel("redis+sentinel://h:1/svc").db == 0


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("redis+sentinel://:pw@h:1,h/svc/0", "sentinel address 'h' must be host:port"),
        ("redis+sentinel://:pw@h:99999/svc/0", "has no valid port"),
        ("redis+sentinel://:pw@h:1/", "names no service"),
        ("redis+sentinel://:pw@h:1/svc/x", "database 'x' is not a whole number"),
        ("redis+sentinel://:pw@h:1/svc/0/more", "/<service_name>/<db>"),
        ("redis+sentinel://:pw@h:1/svc/0?sentinel_pasword=x", "'sentinel_pasword' is not one tasks_app knows"),
    ],
)
def test_a_malformed_sentinel_url_is_one_check_error_without_the_password(settings, url, said):
    use_queue_url(settings, url)
    errors = [e for e in checks.run_checks() if e.id == "tasks_app.E014"]
    assert len(errors) == 1 and said in errors[0].msg, errors
    assert "pw" not in errors[0].msg and "***" in errors[0].msg
    assert 'SAQ["QUEUES"]["default"]["URL"]' in errors[0].msg


def test_passwords_in_a_sentinel_url_are_redacted():
    url = "redis+sentinel://u:s3cret@127.0.0.1:1,127.0.0.1:2/mymaster/0?sentinel_password=zz"
    assert redact_url(url) == "redis+sentinel://u:***@127.0.0.1:1,127.0.0.1:2/mymaster/0?sentinel_password=***"


@pytest.mark.parametrize(
    "url", ["redis://:p@ss/w#rd@localhost:6379/0", "redis://:pa/ss@localhost:6379/0", "redis://:pa?ss@localhost/0"]
)
def test_a_url_whose_password_holds_an_unencoded_separator_is_hidden_whole(url):
    # Where such a password ends cannot be told: the part read as a host, path or fragment is secret too.
    assert redact_url(url) == "***"


def test_tasks_app_parameters_are_taken_off_before_redis_py(settings):
    use_queue_url(settings, "redis+sentinel://h:1/svc/0?wait_replicas=2&wait_timeout=250&concurrency=4")
    from tasks_app import conf

    config = conf.queue_config("default")
    assert (config.url, config.wait_replicas, config.wait_timeout, config.concurrency) == (
        "redis+sentinel://h:1/svc/0",
        2,
        250,
        4,
    )


# --- through the sentinels ----------------------------------------------------------------------


def test_the_whole_job_path_goes_through_the_sentinels(topology, settings, subprocess_env, start_worker, client):
    use_queue_url(settings, topology.url())
    settings.SAQ = {**settings.SAQ, "API_TOKEN": "t0ken"}
    env = {**subprocess_env, "TEST_REDIS_URL": topology.url()}
    assert manage("enqueue", "add_note", "text=from the command", env=env).returncode == 0
    enqueue("add_note", text="from the web process")
    worker = start_worker(env=env)
    worker.wait_for_output("SIGTERM/SIGINT for a clean stop")
    wait_until(lambda: Note.objects.filter(text__startswith="from the").count() == 2, message="both jobs to run")
    # The jobs went to the primary the sentinels name, not to the test's own Redis.
    primary = topology.client(topology.primary_port())
    ours = [key for key in primary.keys("saq:job:default:*") if b":cron:" not in key]
    assert len(ours) == 2
    check = manage("runworker", "--check", env=env)
    assert check.returncode == 0, check.stderr
    assert f"primary 127.0.0.1:{topology.primary_port()} (through Sentinel), 2 replica(s)" in check.stdout
    paused = manage("pausequeue", "default", env=env)
    assert paused.returncode == 0, paused.stderr
    assert primary.exists("saq:default:paused")
    bearer = {"Authorization": "Bearer t0ken"}
    stats = client.get(reverse("admin:tasks_app_dashboard_stats"), headers=bearer).json()
    assert stats["connections"][0]["primary"] == f"127.0.0.1:{topology.primary_port()}"
    assert stats["connections"][0]["sentinel"] is True
    metrics = client.get(reverse("admin:tasks_app_dashboard_metrics"), headers=bearer).content.decode()
    assert 'tasks_app_queue_up{queue="default"} 1.0' in metrics
    client.force_login(User.objects.create_superuser("ops", password="x" * 12))
    page = client.get(reverse("admin:tasks_app_taskqueue_changelist"))
    (shown,) = page.context["connections"]
    assert (shown["primary"], shown["sentinel"]) == (f"127.0.0.1:{topology.primary_port()}", True)
    assert "through Sentinel" in page.text and "***" not in page.text


def test_a_sync_client_goes_through_the_sentinels_too(topology):
    client = redis_urls.sync_client(topology.url(db=2))
    client.set("saq:sync", "yes")
    assert redis.Redis(port=topology.primary_port(), db=2).get("saq:sync") == b"yes"


def test_workers_and_web_processes_follow_a_failover_without_a_restart(
    topology, settings, subprocess_env, start_worker
):
    # wait_replicas=1: an enqueue that returned is on a replica too, so the failover loses none of them.
    url = topology.url(wait_replicas=1)
    use_queue_url(settings, url)
    worker = start_worker(env={**subprocess_env, "TEST_REDIS_URL": url})
    worker.wait_for_output("SIGTERM/SIGINT for a clean stop")
    acknowledged: list[str] = []
    refused: list[str] = []
    stop = threading.Event()

    def stream() -> None:  # a web process enqueueing all along
        index = 0
        while not stop.is_set():
            text = f"stream {index}"
            index += 1
            try:
                enqueue("add_note", text=text)
                acknowledged.append(text)
            except Exception as exc:  # the primary is gone, or no replica confirmed: not acknowledged
                refused.append(f"{text}: {type(exc).__name__}")
                time.sleep(0.05)

    thread = threading.Thread(target=stream)
    # Failovers a sentinel completes (+switch-master): said with the worker's lines if the test fails, to tell a
    # second failover (a loaded machine can see one, and then a second pair of lines is right) from a misreport.
    switches = redis.Redis(port=topology.sentinels[0].port).pubsub()
    switches.subscribe("+switch-master")
    thread.start()
    try:
        wait_until(lambda: len(acknowledged) >= 20, timeout=30, message="enqueues before the fault")
        old = topology.primary_port()
        killed_at = time.monotonic()
        topology.kill_primary()
        new = topology.wait_for_failover(old)
        count_at_failover = len(acknowledged)
        wait_until(lambda: len(acknowledged) >= count_at_failover + 20, timeout=30, message="enqueues after it")
    finally:
        stop.set()
        thread.join(60)
    after = acknowledged[count_at_failover:]
    wait_until(lambda: Note.objects.filter(text__in=after).exists(), timeout=30, message="a job after the failover")
    first_after = time.monotonic() - killed_at
    assert first_after < 15, f"new work completed {first_after:.1f}s after the primary's death"
    wait_until(
        lambda: Note.objects.filter(text__in=acknowledged).values("text").distinct().count() == len(acknowledged),
        timeout=60,
        message="every acknowledged job to run",
    )
    assert worker.process.poll() is None  # the same worker process, never restarted
    # The primaries in the order the sentinels named them (+switch-master): the kill's failover, and on a
    # loaded machine sometimes a second one (a new primary stalled past down-after, 1 s here), which the
    # worker must follow as well. Waits until the worker has reached the last one the sentinels named.
    chain = [old]

    def caught_up() -> bool:
        while (event := switches.get_message(timeout=0.1)) is not None:
            if event["type"] == "message":  # "mymaster <old ip> <old port> <new ip> <new port>"
                chain.append(int(event["data"].split()[-1]))
        back = [line for line in worker.output.splitlines() if "Reached the Redis primary" in line]
        return len(chain) > 1 and bool(back) and f"127.0.0.1:{chain[-1]} " in back[-1]

    def said() -> str:  # the worker's lines about primaries, whole, and the sentinels' order
        lines = [line for line in worker.output.splitlines() if "primary" in line]
        return "\n".join([*lines, f"primaries the sentinels named, in order (+switch-master): {chain}"])

    with contextlib.suppress(AssertionError):
        wait_until(caught_up, timeout=30)
    assert caught_up(), f"the worker never said it reached the last primary the sentinels named:\n{said()}"
    switches.close()
    assert new in chain[1:], said()  # the kill's failover, or one after it if it came first
    back = [line for line in worker.output.splitlines() if "Reached the Redis primary" in line]
    lost = [line for line in worker.output.splitlines() if "Lost the Redis primary" in line]
    # One line back per primary the worker reached, each one the sentinels named and each naming the one it
    # replaced; the last is the primary named last. With one failover: exactly one line, naming both. (With
    # two, a sentinel that has not yet heard of the second may name the first's again for a moment: the
    # worker's lines then go back to it, and say so.)
    ports = [next((p for p in chain[1:] if f"primary 127.0.0.1:{p} " in line), None) for line in back]
    assert None not in ports and ports[-1] == chain[-1], said()
    for previous, port, line in zip([old, *ports], ports, back, strict=False):
        assert (f"replaced 127.0.0.1:{previous}." if previous != port else " after ") in line, said()
    # One line when a primary is lost (none if the next was named before this worker tried again: the line
    # back says which it replaced), and no second pair of the worker's own.
    assert len(lost) <= len(back), said()
    assert all(any(f"primary 127.0.0.1:{port} " in line for port in chain[:-1]) for line in lost), said()
    assert "Lost Redis" not in worker.output and "Redis is back" not in worker.output  # not a second pair


def test_an_unconfirmed_write_raises_a_clear_error(topology, settings):
    use_queue_url(settings, topology.url(wait_replicas=3, wait_timeout=100))  # there are 2 replicas
    with pytest.raises(ReplicasNotConfirmed) as raised:
        enqueue("add_note", text="wants three replicas")
    assert "on 2 of 3 replica(s) within 100 ms" in str(raised.value)
    assert 'SAQ["QUEUES"]["default"]["URL"]' in str(raised.value)


# --- bad settings: one line, exit 2 -------------------------------------------------------------


def test_no_sentinel_answering_is_one_line_and_exit_2(subprocess_env):
    dead = [free_port(), free_port()]
    url = f"redis+sentinel://:s3cret@127.0.0.1:{dead[0]},127.0.0.1:{dead[1]}/mymaster/0"
    env = {**subprocess_env, "TEST_REDIS_URL": url}
    for args in (("runworker", "--burst", "--skip-checks"), ("enqueue", "noop"), ("runworker", "--check")):
        result = manage(*args, env=env, timeout=60)
        assert result.returncode == 2, (args, result.stderr)
        assert f"no sentinel answers at 127.0.0.1:{dead[0]}, 127.0.0.1:{dead[1]}" in result.stderr, result.stderr
        assert "TEST_REDIS_URL" in result.stderr
        assert "Traceback" not in result.stderr and "s3cret" not in result.stderr + result.stdout


def test_a_malformed_sentinel_url_is_one_line_and_exit_2_for_the_health_check(subprocess_env):
    env = {**subprocess_env, "TEST_REDIS_URL": "redis+sentinel://:s3cret@127.0.0.1:26399,/mymaster/0"}
    result = manage("runworker", "--check", env=env, timeout=60)
    assert result.returncode == 2, result.stderr
    assert "is not a valid Sentinel URL: sentinel address '' must be host:port" in result.stderr, result.stderr
    assert "TEST_REDIS_URL" in result.stderr
    assert "Traceback" not in result.stderr and "s3cret" not in result.stderr + result.stdout


def test_an_unknown_service_is_one_line_and_exit_2(topology, subprocess_env):
    url = topology.url().replace("/mymaster/", "/nosuchservice/")
    env = {**subprocess_env, "TEST_REDIS_URL": url}
    for args in (("runworker", "--burst", "--skip-checks"), ("enqueue", "noop")):
        result = manage(*args, env=env, timeout=60)
        assert result.returncode == 2, (args, result.stderr)
        assert "name no healthy primary of service 'nosuchservice'" in result.stderr, result.stderr
        assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_a_replica_count_that_cannot_be_met_stops_the_worker_at_start_up(topology, subprocess_env):
    env = {**subprocess_env, "TEST_REDIS_URL": topology.url(wait_replicas=5)}
    result = manage("runworker", "--burst", "--skip-checks", env=env, timeout=60)
    assert result.returncode == 2, result.stderr
    assert "wait_replicas=5, but 127.0.0.1:" in result.stderr and "has 2 replica(s) connected" in result.stderr
    assert "TEST_REDIS_URL" in result.stderr and "Traceback" not in result.stderr


def test_facts_name_the_primary_and_the_replicas_that_acknowledged(topology, settings):
    use_queue_url(settings, topology.url(wait_replicas=1))
    enqueue("add_note", text="counted")
    from tasks_app.redis_facts import connection_facts

    [found] = background.run(connection_facts())
    assert found["primary"] == f"127.0.0.1:{topology.primary_port()}" and found["sentinel"] is True
    assert found["replicas"] == 2 and found["wait_replicas"] == 1 and found["acknowledged"] >= 1
    assert found["error"] is None
    connections.forget_all()
