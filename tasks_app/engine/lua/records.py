"""The scripts that write a job from outside its attempt (enqueue, a reader's record compare-and-set, a
bulk delete) and the queue's own records (pause, worker info, depth). Times are Redis's (``clock()``)."""

from .chains import ENQUEUE_CHAIN_BODY
from .codec import PRELUDE
from .debounce import DEBOUNCING

# The common case goes first, and returns before the functions below are defined (defining them costs
# an enqueue more than its writes): a job never run, due now, not debounced, with no record under its id,
# and nothing between its header and its body (``storage.serialize`` writes fields the scripts read, such
# as a priority, right after the header: such a job goes the general way). It writes and replies what
# the general path (``enqueue_payload``) does for it; any other enqueue, and this one when a record
# exists, runs the general path. ``tests/tasks_app/engine/test_enqueue_script.py`` holds them to that.
FRESH = '{"status": "queued", "attempts": 0, "started": 0, "touched": 0, "completed": 0, "worker_id": null, "queued": '
FRESH_DUE_NOW = FRESH + '0, "scheduled": 0, "function": '
_FAST_ENQUEUE = (
    f"local FRESH, FRESH_DUE_NOW = '{FRESH}', '{FRESH_DUE_NOW}'\n"
    + r"""
if not ARGV[5] and tonumber(ARGV[2]) == 0 and tonumber(ARGV[3]) == 0
        and string.sub(ARGV[1], 1, #FRESH_DUE_NOW) == FRESH_DUE_NOW then
    local t = redis.call('TIME')
    local now_ms = string.format('%d', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
    -- NX: written only where no record is (else nothing is written, and the general path decides)
    if redis.call('SET', KEYS[1], FRESH .. now_ms .. string.sub(ARGV[1], #FRESH + 2), 'NX') then
        redis.call('ZADD', KEYS[2], 0, KEYS[1])
        redis.call('RPUSH', KEYS[3], KEYS[1])
        return {'queued', now_ms, ARGV[2]}
    end
end
"""
)
# KEYS: job id, incomplete, queued, successor. ARGV: payload, scheduled (epoch s, "0" = now), delay
# (s, "0" = none: due that long from now on Redis's clock, which overrides scheduled), then, when
# either is given: the outbox row's token ("" for none: see ``engine/records.OUTBOX_TOKEN``), and for a
# debounced enqueue only: debounce (s), debounce_max (s, "0" = no ceiling): see ``debounce.py``.
# ``queued`` is stamped now. Returns {"queued", queued (ms), scheduled (s)}, {"deferred", queued,
# scheduled} (waits for an aborting job of the same key, or, debounced, a running one),
# {"debounced", queued (the burst's first), scheduled} (replaced a queued job's record) or
# {"exists", payload of the pending job, or of the job this outbox row already wrote, ended or not}.
ENQUEUE = (
    _FAST_ENQUEUE
    + PRELUDE
    + DEBOUNCING
    + r"""
local now_ms, now = clock()
if ARGV[4] and ARGV[4] ~= '' then
    -- An outbox row delivered twice (its commit's delivery and a worker's drain, or a retry after a lost
    -- reply): the record this row wrote holds its token, a random 128-bit hex, found by a plain search.
    -- Its job, queued, running or ended, is the one to report: enqueuing it anew would run it again.
    local cur = redis.call('GET', KEYS[1])
    if cur and string.find(cur, ARGV[4], 1, true) then return {'exists', cur} end
end
if ARGV[5] then
    return debounce(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1], tonumber(ARGV[5]), tonumber(ARGV[6]), now_ms, now)
end
local payload, score, scheduled = stamp(ARGV[1], {queued = now_ms}), ARGV[2], ARGV[2]
if tonumber(ARGV[3]) > 0 then
    score, payload = delayed(payload, tonumber(ARGV[3]), now)
    scheduled = string.format('%d', math.ceil(score))
end
local cur = redis.call('GET', KEYS[1])
if cur then
    local st = read(cur)
    if not TERMINAL[st.status] then
        if st.status == 'aborting' then
            local waiting = redis.call('HGET', KEYS[4], 'payload')
            if waiting then return {'exists', waiting} end
            redis.call('HSET', KEYS[4], 'payload', payload, 'scheduled', score)
            return {'deferred', now_ms, scheduled}
        end
        return {'exists', cur}
    end
end
enqueue_payload(KEYS[1], payload, score, KEYS[2], KEYS[3], push_for(score))
return {'queued', now_ms, scheduled}
"""
)

# Every step of a chain or group, in one write: see ``chains.py``.
ENQUEUE_CHAIN = PRELUDE + ENQUEUE_CHAIN_BODY

# Record CAS: replace a job that is still exactly ``expected`` with ``payload``, and move it
# between the lists as its new status says. Used by readers that decided from what they read:
# the sweep, abort, the dashboard's retry. A queued job is stamped ``touched`` and is due after
# ``delay`` seconds if given, else at its ``scheduled`` if that is still ahead on Redis's clock, else
# at once; a terminal one is stamped ``completed``.
# KEYS: job id, active, incomplete, queued, successor.
# ARGV: expected payload ("" for "no record": a job written where none was read), new payload, new status,
# ttl, delay (s, "" for none), (a chain step's) links key.
# Returns {"ok", payload written} or {"changed", payload} / {"missing"}.
REPLACE = (
    PRELUDE
    + r"""
local cur = redis.call('GET', KEYS[1])
if ARGV[1] == '' then
    if cur then return {'changed', cur} end
elseif not cur then return {'missing'}
elseif cur ~= ARGV[1] then return {'changed', cur} end
local now_ms, now = clock()
local status, payload = ARGV[3], ARGV[2]
if status == 'queued' then
    payload = stamp(payload, {touched = now_ms})
    local score, push, delay = 0, 'tail', tonumber(ARGV[5])
    if delay and delay > 0 then
        score, payload = delayed(payload, delay, now)
        push = 'none'
    else
        local due = tonumber(read(payload).scheduled or 0) or 0
        if due > now then score, push = due, 'none' end
    end
    requeue_record(KEYS[1], payload, score, push, KEYS[2], KEYS[3], KEYS[4], maybe_listed(cur))
elseif TERMINAL[status] then
    payload = stamp(payload, {completed = now_ms})
    end_record(KEYS[1], payload, status, tonumber(ARGV[4]), KEYS[2], KEYS[3], KEYS[4], KEYS[5], maybe_listed(cur),
               ARGV[6])
else
    -- still running somewhere: it stays in the active list for its worker (or the sweep)
    redis.call('LREM', KEYS[2], 0, KEYS[1])
    redis.call('RPUSH', KEYS[2], KEYS[1])
    redis.call('SET', KEYS[1], payload)
    redis.call('PUBLISH', KEYS[1], status)
end
return {'ok', payload}
"""
)

# Delete a job that is still exactly the record read (a finished job, from a bulk clean-up).
# KEYS: job id. ARGV: the record read.
DELETE_IF_UNCHANGED = r"""
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])
"""

# Pause a queue unless it is paused already. KEYS: paused. ARGV: who.
# Returns {1, record written} or {0, the record there}; a record is {"by": who, "at": epoch s}.
PAUSE = r"""
local t = redis.call('TIME')
local mine = cjson.encode({by = ARGV[1], at = tonumber(t[1])})
if redis.call('SET', KEYS[1], mine, 'NX') then return {1, mine} end
return {0, redis.call('GET', KEYS[1]) or mine}
"""

# SAQ's write_worker_info, its expiry on Redis's clock. KEYS: info key, stats. ARGV: info (JSON), ttl (s).
WORKER_INFO = r"""
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('SETEX', KEYS[1], ARGV[2], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], 0, now)
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]) * 1000, KEYS[1])
redis.call('EXPIRE', KEYS[2], ARGV[2])
return now
"""

# The queue's counts, pause record and live workers (stats entries not yet expired on Redis's clock).
# Queued counts the jobs of every priority and those parked by their limits, not the wake-up entries
# (pushed on an empty list: at its head).
# KEYS: queued, active, incomplete, paused, stats. Returns {queued, active, incomplete, paused or false, workers}.
DEPTH = (
    PRELUDE
    + r"""
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local queued = redis.call('LLEN', KEYS[1]) - #redis.call('LPOS', KEYS[1], wake_of(KEYS[1]), 'COUNT', 0, 'MAXLEN', 16)
if redis.call('EXISTS', KEYS[1] .. ':levels') == 1 then
    for _, level in ipairs(redis.call('ZRANGE', KEYS[1] .. ':levels', 0, -1)) do
        queued = queued + redis.call('LLEN', list_of(KEYS[1], tonumber(level)))
    end
end
for _, name in ipairs(redis.call('ZRANGE', KEYS[1] .. ':limited', 0, -1)) do
    queued = queued + redis.call('LLEN', KEYS[1] .. ':waiting:' .. name)  -- parked by their limits
end
return {queued, redis.call('LLEN', KEYS[2]), redis.call('ZCARD', KEYS[3]),
        redis.call('GET', KEYS[4]), redis.call('ZCOUNT', KEYS[5], now, '+inf')}
"""
)
