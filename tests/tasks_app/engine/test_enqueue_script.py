"""The enqueue script's first branch, for a fresh job due now (``engine/lua/records.py``): taken for what
``storage.serialize`` writes, and writing what the general path writes; anything else goes the general way."""

import pytest
from saq.job import Job, Status

from tasks_app.engine import storage
from tasks_app.engine.lua.records import _FAST_ENQUEUE, ENQUEUE

GENERAL = ENQUEUE[len(_FAST_ENQUEUE) :]  # the script without its first branch
FAST_ONLY = _FAST_ENQUEUE + "return 'general'"  # says whether the first branch took the call


def call(redis_db, script: str, key: str, payload: str, scheduled: int | str = 0, delay: float = 0.0):
    keys = [f"saq:job:default:{key}", "saq:default:incomplete", "saq:default:queued", f"saq:default:successor:{key}"]
    return redis_db.eval(script, 4, *keys, payload, scheduled, delay)


def fresh(key: str, **fields) -> str:
    kwargs = {"big": 2**62 + 1, "empty": [], "text": 'say "hi"'}
    return storage.serialize(Job("f", kwargs=kwargs, key=key, status=Status.QUEUED, timeout=9, **fields))


def written(redis_db, key: str, queued: bytes) -> tuple:
    record = redis_db.get(f"saq:job:default:{key}").replace(queued, b"T").replace(key.encode(), b"K")
    job_id = f"saq:job:default:{key}".encode()
    listed = job_id in redis_db.lrange("saq:default:queued", 0, -1)
    return record, redis_db.zscore("saq:default:incomplete", job_id), listed


def test_a_fresh_job_due_now_takes_the_first_branch_and_is_written_as_the_general_path_writes_it(redis_db):
    general = call(redis_db, GENERAL, "job-general", fresh("job-general"))
    fast = call(redis_db, FAST_ONLY, "job-fast", fresh("job-fast"))
    assert general[0] == fast[0] == b"queued" and general[2] == fast[2] == b"0"
    record, score, listed = written(redis_db, "job-fast", fast[1])
    assert (record, score, listed) == written(redis_db, "job-general", general[1])
    assert record.startswith(storage_header(b"T")) and (score, listed) == (0.0, True)


def storage_header(queued: bytes) -> bytes:
    return (
        b'{"status": "queued", "attempts": 0, "started": 0, "touched": 0, "completed": 0, "worker_id": null, '
        b'"queued": ' + queued + b', "scheduled": 0, '
    )


@pytest.mark.parametrize(
    "case",
    ["delay", "scheduled", "debounced", "run before", "a field after the header", "record exists"],
)
def test_every_other_enqueue_goes_the_general_way(redis_db, case):
    payload, scheduled, delay, extra = fresh("k"), 0, 0.0, []
    if case == "delay":
        delay = 30.0
    elif case == "scheduled":
        scheduled = 2_000_000_000
    elif case == "run before":
        payload = fresh("k", attempts=1)
    elif case == "a field after the header":  # one the scripts read there (e.g. a priority)
        payload = payload.replace('"scheduled": 0, ', '"scheduled": 0, "priority": 5, ', 1)
    elif case == "record exists":
        redis_db.set("saq:job:default:k", fresh("k"))
    keys = ["saq:job:default:k", "saq:default:incomplete", "saq:default:queued", "saq:default:successor:k"]
    if case == "debounced":
        extra = [5, 0]
    assert redis_db.eval(FAST_ONLY, 4, *keys, payload, scheduled, delay, *extra) == b"general"
    assert redis_db.zcard("saq:default:incomplete") == redis_db.llen("saq:default:queued") == 0
    if case == "record exists":  # the first branch wrote nothing
        assert redis_db.get("saq:job:default:k") == fresh("k").encode()


def test_a_pending_job_is_returned_and_an_ended_one_replaced_by_the_whole_script(redis_db):
    first = call(redis_db, ENQUEUE, "k", fresh("k"))
    again = call(redis_db, ENQUEUE, "k", fresh("k"))
    assert first[0] == b"queued" and again[0] == b"exists"
    ended = fresh("k").replace('"status": "queued"', '"status": "complete"', 1)
    redis_db.set("saq:job:default:k", ended)
    redis_db.delete("saq:default:queued", "saq:default:incomplete")
    assert call(redis_db, ENQUEUE, "k", fresh("k"))[0] == b"queued"
    assert redis_db.llen("saq:default:queued") == 1 and b'"status": "queued"' in redis_db.get("saq:job:default:k")
