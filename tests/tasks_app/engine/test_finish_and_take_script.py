"""The finish-and-take script's first branch (``engine/lua/attempts.py``): taken for a worker's common case,
and writing, replying and publishing what the general path does; in every other case the general path
decides (after the branch's finish, when that much was the common case)."""

import re
import uuid

import pytest
from saq.job import Job, Status

from tasks_app.engine import storage
from tasks_app.engine.lua.attempts import _FIRST_BRANCH, FINISH_AND_TAKE

# The script without its first branch (its variables left nil), and the branch alone, saying
# how far it went when it does not reply itself: whether it wrote the finish, and the id it moved.
GENERAL = FINISH_AND_TAKE.replace(_FIRST_BRANCH, "", 1)
FIRST_ONLY = FINISH_AND_TAKE.split(_FIRST_BRANCH)[0] + _FIRST_BRANCH
FIRST_ONLY += "return {'general', FAST_FINISH and 1 or 0, FAST_ID or false}"

P = "saq:default:"
# Job keys of this run's own: PUBLISH reaches every database's subscribers, and other runs share the server.
SUFFIX = f"-{uuid.uuid4().hex[:8]}"


def jid(name: str) -> str:
    return f"saq:job:default:{name}{SUFFIX}"


KEYS = [jid("a"), f"{P}active", f"{P}incomplete", f"{P}queued", f"{P}successor:a{SUFFIX}", f"{P}paused"]
STARTED = 1_765_000_000_000
KWARGS = {"big": 2**62 + 1, "empty": [], "text": 'say "hi", "status": "queued"'}


def record(key: str, status: Status, **fields) -> str:
    job = Job("f", kwargs=KWARGS, key=key + SUFFIX, status=status, timeout=9, queued=STARTED - 5, **fields)
    return storage.serialize(job)


def running(**fields) -> str:
    fields = {"attempts": 1, "started": STARTED, "touched": STARTED, "worker_id": "host-1:w.9", **fields}
    return record("a", Status.ACTIVE, **fields)


def setup(redis_db, case: str) -> list:
    """The state of ``case``, and the script's ARGV: job a runs on worker host-1:w.9 and ends COMPLETE."""
    redis_db.set(KEYS[0], running(**({"worker_id": "host-2:w.1"} if case == "another worker's" else {})))
    if case == "aborting":
        redis_db.set(KEYS[0], redis_db.get(KEYS[0]).replace(b'"active"', b'"aborting"', 1))
    redis_db.rpush(KEYS[1], KEYS[0])
    redis_db.zadd(KEYS[2], {KEYS[0]: 0})
    dead = [(f"x{i}", None) for i in range(20)]
    nexts = {
        "nothing queued": [],
        "a job with limits next": [("b", record("b", Status.QUEUED, meta={"limits": "k,1,60000;"}))],
        "an entry with no record next": [("b", None), ("c", record("c", Status.QUEUED))],
        # The branch's pick is the first of the general path's 20: c is not reached by this call.
        "twenty entries with no record next": [*dead, ("c", record("c", Status.QUEUED))],
        "an aborted job next": [("b", record("b", Status.ABORTED)), ("c", record("c", Status.QUEUED))],
        "a job run before next": [("b", record("b", Status.QUEUED, attempts=2, worker_id="old:w"))],
        "a job without the header next": [("b", '{"status": "queued", "attempts": 0, "function": "f"}')],
    }.get(case, [("b", record("b", Status.QUEUED, scheduled=0))])
    for key, payload in nexts:
        if payload is not None:
            redis_db.set(jid(key), payload)
        redis_db.rpush(KEYS[3], jid(key))
        redis_db.zadd(KEYS[2], {jid(key): 0})
    if case == "work waits for its key":
        redis_db.hset(KEYS[4], mapping={"payload": record("a", Status.QUEUED), "scheduled": 0})
    if case == "paused":
        redis_db.set(KEYS[5], 1)
    elif case == "limits in use":  # a job parked by its rate limit (until 2096)
        redis_db.zadd(f"{P}queued:limited", {"r:k": 4_000_000_000_000})
        redis_db.rpush(f"{P}queued:waiting:r:k", jid("p"))
    elif case == "priorities in use":  # a job waiting at priority 5
        redis_db.set(jid("p"), record("p", Status.QUEUED, priority=5))
        redis_db.zadd(f"{P}queued:levels", {"5": 5})
        redis_db.rpush(f"{P}queued:p5", jid("p"))
    ended = running().replace('"active"', '"complete"', 1)
    if case == "attempts written with a leading zero":  # not by storage.serialize; rewrite writes 1
        ended = ended.replace('"attempts": 1, ', '"attempts": 01, ', 1)
    if case == "a job with limits ending":
        ended = ended.replace('"scheduled": 0, ', '"scheduled": 0, "meta": {"limits": "k,1,60000;"}, ', 1)
    ttl = {"kept for good": 0, "not kept": -1}.get(case, 600)
    links = f"{P}links:x" if case == "a chain step" else ""
    started = STARTED + 1 if case == "another start" else STARTED
    attempts = 2 if case == "another attempt's" else 1
    return [ended, "complete", ttl, "active,aborting,queued", "host-1:w.9", attempts, links, started]


def state(redis_db, now: bytes) -> dict:
    """Every key of the database: its type, value (times stamped ``now`` read NOW) and whether it expires."""
    out = {}
    for key in sorted(redis_db.keys("*")):
        kind = redis_db.type(key).decode()
        if kind == "string":
            value = redis_db.get(key)
        elif kind == "list":
            value = redis_db.lrange(key, 0, -1)
        elif kind == "zset":
            value = redis_db.zrange(key, 0, -1, withscores=True)
        else:
            value = sorted(redis_db.hgetall(key).items())
        out[key] = (kind, repr(value).replace(now.decode(), "NOW"), redis_db.ttl(key) > 0)
    return out


def run(redis_db, script: str, case: str) -> tuple:
    """``script`` run on ``case``'s state: its reply, the state after and the messages published."""
    redis_db.flushdb()
    argv = setup(redis_db, case)
    pubsub = redis_db.pubsub()
    pubsub.subscribe(*(jid(name) for name in "abcp."))
    for _ in "abcp.":  # every subscription confirmed before the script runs
        assert pubsub.get_message(timeout=5)["type"] == "subscribe"
    reply = redis_db.eval(script, len(KEYS), *KEYS, *argv)
    redis_db.publish(jid("."), "end")  # heard after everything the script published
    published = []
    while (message := pubsub.get_message(timeout=5))["channel"] != jid(".").encode():
        published.append((message["channel"], message["data"]))
    pubsub.close()
    now = _now(reply)
    return repr(reply).replace(now.decode(), "NOW"), state(redis_db, now), published


def _now(reply: list) -> bytes:
    # The time the script stamped: its finish's, or (a finish refused) the start of the job it took.
    if reply[0][0] == b"ok":
        return reply[0][1]
    taken = reply[1]
    if isinstance(taken, list) and len(taken) == 3:
        return re.search(rb'"started": (\d+)', taken[1]).group(1)
    return b"-"


COMMON = ["a plain job next", "a job run before next", "kept for good", "not kept"]
FINISH_ONLY = ["nothing queued", "a job with limits next", "an entry with no record next", "an aborted job next",
               "a job without the header next", "twenty entries with no record next"]  # fmt: skip
NEITHER = ["aborting", "another worker's", "another attempt's", "another start", "a chain step",
           "work waits for its key", "paused", "limits in use", "priorities in use",
           "a job with limits ending", "attempts written with a leading zero"]  # fmt: skip


@pytest.mark.parametrize("case", COMMON + FINISH_ONLY + NEITHER)
def test_the_whole_script_writes_replies_and_publishes_what_the_general_path_does(redis_db, case):
    assert run(redis_db, FINISH_AND_TAKE, case) == run(redis_db, GENERAL, case)


@pytest.mark.parametrize("case", COMMON)
def test_the_common_case_is_the_first_branch_s_alone(redis_db, case):
    redis_db.flushdb()
    argv = setup(redis_db, case)
    ended, taken = redis_db.eval(FIRST_ONLY, len(KEYS), *KEYS, *argv)
    assert ended[0] == b"ok" and taken[0] == jid("b").encode() and taken[2] == 1
    assert redis_db.get(jid("b")) == taken[1] and taken[1].startswith(b'{"status": "active", ')
    assert redis_db.lrange(KEYS[1], 0, -1) == [jid("b").encode()]


@pytest.mark.parametrize("case", FINISH_ONLY)
def test_the_branch_writes_the_finish_and_leaves_the_take_to_the_general_path(redis_db, case):
    redis_db.flushdb()
    argv = setup(redis_db, case)
    general, finished, moved = redis_db.eval(FIRST_ONLY, len(KEYS), *KEYS, *argv)
    assert (general, finished) == (b"general", 1) and bool(moved) == (case != "nothing queued")
    assert redis_db.get(KEYS[0]).startswith(b'{"status": "complete", "attempts": 1, ')


@pytest.mark.parametrize("case", NEITHER)
def test_every_other_finish_goes_the_general_way_having_written_nothing(redis_db, case):
    redis_db.flushdb()
    argv = setup(redis_db, case)
    before = state(redis_db, b"-")
    assert redis_db.eval(FIRST_ONLY, len(KEYS), *KEYS, *argv) == [b"general", 0, None]
    assert state(redis_db, b"-") == before
