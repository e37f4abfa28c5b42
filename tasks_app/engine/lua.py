"""The Lua scripts behind every job state change: each is one atomic compare-and-set in Redis.

The header-first layout below is kept for correctness first: its plain alternative (``cjson.decode``
and ``cjson.encode`` in every script) fails ``test_big_integers_empty_lists_and_quotes_survive_every_rewrite``
(2**62 + 1 comes back as a float). Measured against it anyway (CPU per job, worker processes +
redis-server, medians of 3 interleaved rounds, 2 cores shared with 7 other sessions): no-op jobs at
c=10, 128 us vs 150 us (1.17x); 20 ms I/O at c=200, 143 us vs 143 us (1.01x); enqueue_many, 1.0x
within noise. ``uv run python bench/pieces.py --variants all,no-header_first`` prints them.

A job is stored as JSON whose first six fields are always, in this order, ``status``,
``attempts``, ``started``, ``touched``, ``completed`` and ``worker_id`` (see
``AtomicRedisQueue.serialize``). That fixed header lets a script read and rewrite a
job's state without decoding, and so without re-encoding, the caller's data after it
(Lua numbers are doubles and Lua tables cannot tell ``[]`` from ``{}``: a decode and
re-encode would corrupt big integers and empty lists in kwargs and results).

Three kinds of compare-and-set are used:

- **owner**: the worker that runs an attempt writes its outcome only while the stored
  job is still that attempt (same ``worker_id`` and ``attempts``) in an expected status;
- **record**: a reader that decided from a job it read (sweep, abort, dashboard) writes
  only if the stored record is still byte-for-byte what it read;
- **header**: take, touch and finishing an abort rewrite the header in Lua.

A job that has reached a terminal status (complete, failed, aborted) is never written
again except by a new enqueue of its key.
"""

PRELUDE = r"""
local TERMINAL = {complete = true, failed = true, aborted = true}
local HEADER = '^{"status": "(%l+)", "attempts": (%d+), "started": (%d+), "touched": (%d+), "completed": (%d+), '
local WORKER_NULL = '^"worker_id": null, ()'
local WORKER_STR = '^"worker_id": "([%w%._:%-]*)", ()'

-- The job's state: status, attempts, started, touched, completed, worker ('' for none) and
-- pos, where the caller's data starts (nil for a job written without the header).
local function read(payload)
    local s, e, status, attempts, started, touched, completed = string.find(payload, HEADER)
    if s then
        local rest = string.sub(payload, e + 1, e + 200)
        local pos = string.match(rest, WORKER_NULL)
        local worker = ''
        if not pos then
            worker, pos = string.match(rest, WORKER_STR)
        end
        if pos then
            return {status = status, attempts = tonumber(attempts), started = started, touched = touched,
                    completed = completed, worker = worker, pos = e + pos}
        end
    end
    local ok, job = pcall(cjson.decode, payload)
    if not ok or type(job) ~= 'table' then
        return {status = 'unknown', attempts = 0, started = '0', touched = '0', completed = '0', worker = ''}
    end
    return {status = job.status or 'new', attempts = tonumber(job.attempts) or 0,
            started = tostring(job.started or 0), touched = tostring(job.touched or 0),
            completed = tostring(job.completed or 0),
            worker = type(job.worker_id) == 'string' and job.worker_id or ''}
end

local function rewrite(payload, st)
    local worker = 'null'
    if st.worker ~= '' then worker = '"' .. st.worker .. '"' end
    return '{"status": "' .. st.status .. '", "attempts": ' .. string.format('%d', st.attempts)
        .. ', "started": ' .. st.started .. ', "touched": ' .. st.touched .. ', "completed": ' .. st.completed
        .. ', "worker_id": ' .. worker .. ', ' .. string.sub(payload, st.pos)
end

-- The stored record of a job and its state, or nil when there is none.
local function load(id)
    local cur = redis.call('GET', id)
    if not cur then return nil, nil end
    return cur, read(cur)
end

local function owned(st, worker, attempts)
    return st.worker == worker and st.attempts == attempts
end

-- The record and state of a job held by this attempt, or the reply refusing the change.
local function load_owned(id, worker, attempts)
    local cur, st = load(id)
    if not cur then return nil, nil, {'missing'} end
    if not owned(st, worker, tonumber(attempts)) then return cur, st, {'refused', cur} end
    return cur, st, nil
end

local function allowed(status, list)
    return string.find(',' .. list .. ',', ',' .. status .. ',', 1, true) ~= nil
end

local function store(id, payload, ttl)
    ttl = math.ceil(ttl)  -- SET EX takes whole seconds; a record not written by us may hold 1.5
    if ttl > 0 then
        redis.call('SET', id, payload, 'EX', ttl)
    elseif ttl == 0 then
        redis.call('SET', id, payload)
    else
        redis.call('DEL', id)
    end
end

-- Queue a job: "tail"/"head" puts it on the queued list now (score 0); "none" leaves it to the
-- scheduler, due at ``score`` (epoch seconds). A job id is never in the queued list twice.
local function enqueue_payload(id, payload, score, incomplete, queued, push)
    redis.call('SET', id, payload)
    if push == 'none' then
        redis.call('ZADD', incomplete, score, id)
    else
        redis.call('ZADD', incomplete, 0, id)
        if push == 'head' then redis.call('LPUSH', queued, id) else redis.call('RPUSH', queued, id) end
    end
end

local function push_for(scheduled)
    if tonumber(scheduled) == 0 then return 'tail' end
    return 'none'
end

-- Work enqueued with this key while the job was being aborted runs now that it has ended.
local function run_successor(id, successor, incomplete, queued)
    local waiting = redis.call('HMGET', successor, 'payload', 'scheduled')
    if waiting[1] then
        redis.call('DEL', successor)
        enqueue_payload(id, waiting[1], waiting[2], incomplete, queued, push_for(waiting[2]))
        redis.call('PUBLISH', id, 'queued')
    end
end

-- A job ends: out of every list (the queued list is scanned only if it may be there), stored for
-- its ttl, its status published, and work waiting for its key queued. The store goes first: a
-- script's error keeps the writes before it, and the store is the one write that can fail.
local function end_record(id, payload, status, ttl, active, incomplete, queued, successor, maybe_queued)
    store(id, payload, ttl)
    redis.call('LREM', active, 0, id)
    redis.call('ZREM', incomplete, id)
    if maybe_queued then redis.call('LREM', queued, 0, id) end
    redis.call('PUBLISH', id, status)
    run_successor(id, successor, incomplete, queued)
end

-- A job goes back on the queue (see enqueue_payload for score and push).
local function requeue_record(id, payload, score, push, active, incomplete, queued)
    redis.call('LREM', active, 0, id)
    redis.call('LREM', queued, 0, id)
    enqueue_payload(id, payload, score, incomplete, queued, push)
    redis.call('PUBLISH', id, 'queued')
end

-- Make an ABORTING or ACTIVE job terminal from its stored record (its abort reason is kept).
local function end_stored(id, cur, st, status, now, ttl, active, incomplete, successor, queued)
    st.status = status
    st.completed = now
    local new = rewrite(cur, st)
    end_record(id, new, status, ttl, active, incomplete, queued, successor, false)
    return new
end

-- QUEUED -> ACTIVE for the attempt this worker just moved to the active list.
local function activate(id, active, worker, now)
    local cur = redis.call('GET', id)
    if not cur then
        redis.call('LREM', active, 1, id)
        return false
    end
    local st = read(cur)
    if st.status ~= 'queued' then
        -- Not runnable (aborted or finished while listed): drop the stale entry.
        redis.call('LREM', active, 1, id)
        return false
    end
    if not st.pos then
        return {id, cur, 0}
    end
    st.status = 'active'
    st.attempts = st.attempts + 1
    st.started = now
    st.touched = now
    st.completed = '0'
    st.worker = worker
    local new = rewrite(cur, st)
    redis.call('SET', id, new)
    redis.call('PUBLISH', id, 'active')
    return {id, new, 1}
end

-- The next runnable job, moved to the active list and marked ACTIVE for ``worker``; false when
-- nothing is queued; 'paused' while the queue is paused (its workers take nothing new).
local function take_next(queued, active, paused, worker, now)
    if redis.call('EXISTS', paused) == 1 then return 'paused' end
    for _ = 1, 20 do
        local id = redis.call('LMOVE', queued, active, 'LEFT', 'RIGHT')
        if not id then return false end
        local taken = activate(id, active, worker, now)
        if taken then return taken end
    end
    return false
end
"""

# KEYS: job id, incomplete, queued, successor. ARGV: payload, scheduled (epoch s, "0" = now).
# Returns {"queued"}, {"deferred", payload} (waits for an aborting job of the same key)
# or {"exists", payload of the pending job}.
ENQUEUE = (
    PRELUDE
    + r"""
local cur = redis.call('GET', KEYS[1])
if cur then
    local st = read(cur)
    if not TERMINAL[st.status] then
        if st.status == 'aborting' then
            local waiting = redis.call('HGET', KEYS[4], 'payload')
            if waiting then return {'exists', waiting} end
            redis.call('HSET', KEYS[4], 'payload', ARGV[1], 'scheduled', ARGV[2])
            return {'deferred', ARGV[1]}
        end
        return {'exists', cur}
    end
end
enqueue_payload(KEYS[1], ARGV[1], ARGV[2], KEYS[2], KEYS[3], push_for(ARGV[2]))
return {'queued'}
"""
)

# KEYS: queued, active, paused. ARGV: worker id, now (ms). Takes the next runnable job and marks it
# ACTIVE for this worker, in one step. Returns {id, payload, activated (1/0)}, false or 'paused'.
TAKE = (
    PRELUDE
    + r"""
return take_next(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2])
"""
)

# KEYS: active, job id (just moved there by BLMOVE), queued, paused. ARGV: worker id, now (ms).
# A job moved while the queue is paused goes back to the head of the queue ('paused').
ACTIVATE = (
    PRELUDE
    + r"""
if not redis.call('LPOS', KEYS[1], KEYS[2]) then return false end
if redis.call('EXISTS', KEYS[4]) == 1 then
    redis.call('LREM', KEYS[1], 1, KEYS[2])
    redis.call('LPUSH', KEYS[3], KEYS[2])
    return 'paused'
end
return activate(KEYS[2], KEYS[1], ARGV[1], ARGV[2])
"""
)

# Owner CAS: the attempt's outcome, written by whoever holds it.
# KEYS: job id, active, incomplete, queued, successor.
# ARGV: payload, status, ttl, allowed statuses (comma list), worker, attempts, now (ms).
# An ABORTING job that fails or completes is recorded as it ended (the abort came too late).
# Returns {"ok"} or {"refused", stored payload} / {"missing"}.
FINISH_BODY = r"""
local function finish()
    local cur, st, refused = load_owned(KEYS[1], ARGV[5], ARGV[6])
    if refused then return refused end
    if not allowed(st.status, ARGV[4]) then return {'refused', cur} end
    end_record(KEYS[1], ARGV[1], ARGV[2], tonumber(ARGV[3]), KEYS[2], KEYS[3], KEYS[4], KEYS[5], st.status == 'queued')
    return {'ok'}
end
"""
FINISH = PRELUDE + FINISH_BODY + "return finish()\n"

# FINISH, then TAKE for the same worker slot: one round trip per job on the hot path.
# KEYS: FINISH's, then paused. ARGV: FINISH's. Returns {finish reply, what TAKE returns}.
FINISH_AND_TAKE = PRELUDE + FINISH_BODY + "return {finish(), take_next(KEYS[4], KEYS[2], KEYS[6], ARGV[5], ARGV[7])}\n"

# Owner CAS: put the attempt back on the queue (a retry, or a clean stop's re-queue).
# KEYS: job id, active, incomplete, queued, successor.
# ARGV: payload, score (epoch s, for push "none"), push ("tail", "head", "none"), allowed statuses,
# worker, attempts, ttl, now (ms).
# If the job is being aborted, the abort wins: it ends ABORTED instead.
# Returns {"queued"}, {"aborted", payload}, {"refused", payload} or {"missing"}.
REQUEUE = (
    PRELUDE
    + r"""
local cur, st, refused = load_owned(KEYS[1], ARGV[5], ARGV[6])
if refused then return refused end
if st.status == 'aborting' and st.pos then
    return {'aborted', end_stored(KEYS[1], cur, st, 'aborted', ARGV[8], tonumber(ARGV[7]),
                                  KEYS[2], KEYS[3], KEYS[5], KEYS[4])}
end
if not allowed(st.status, ARGV[4]) then return {'refused', cur} end
requeue_record(KEYS[1], ARGV[1], ARGV[2], ARGV[3], KEYS[2], KEYS[3], KEYS[4])
return {'queued'}
"""
)

# Owner CAS for SAQ's ``Queue.update``: write the caller's data, keeping the stored status unless
# a new non-terminal one is given. Never writes a terminal job, never moves a job out of ABORTING.
# A QUEUED job may be marked ACTIVE by the next attempt (SAQ's own Worker does that after dequeue).
# KEYS: job id. ARGV: payload, new status ("" to keep), worker, attempts.
# Returns {"ok", status} or {"refused", payload} / {"missing"}.
UPDATE = (
    PRELUDE
    + r"""
local cur, st = load(KEYS[1])
if not cur then return {'missing'} end
if TERMINAL[st.status] then return {'refused', cur} end
local attempts = tonumber(ARGV[4])
local ok = owned(st, ARGV[3], attempts)
if not ok and ARGV[2] == 'active' and st.status == 'queued' and st.attempts + 1 == attempts then ok = true end
if not ok then return {'refused', cur} end
local status = st.status
if ARGV[2] ~= '' and status ~= 'aborting' then status = ARGV[2] end
local new = read(ARGV[1])
new.status = status
redis.call('SET', KEYS[1], rewrite(ARGV[1], new))
redis.call('PUBLISH', KEYS[1], status)
return {'ok', status}
"""
)

# Heartbeat and abort check for all of one worker's running jobs, in one round trip.
# KEYS: job ids. ARGV: worker id, now (ms), then per job: attempts, touch (1/0).
# Returns per job its status if this worker still holds it (active, aborting), else "lost".
TOUCH = (
    PRELUDE
    + r"""
local out = {}
for i, id in ipairs(KEYS) do
    local state = 'lost'
    local cur = redis.call('GET', id)
    if cur then
        local st = read(cur)
        if (st.status == 'active' or st.status == 'aborting') and owned(st, ARGV[1], tonumber(ARGV[1 + 2 * i])) then
            state = st.status
            if ARGV[2 + 2 * i] == '1' and st.pos then
                st.touched = ARGV[2]
                redis.call('SET', id, rewrite(cur, st))
            end
        end
    end
    out[i] = state
end
return out
"""
)

# The worker ends an attempt that was being aborted: ABORTING -> ABORTED, keeping the reason.
# KEYS: job id, active, incomplete, queued, successor. ARGV: worker, attempts, now (ms), ttl.
# Returns {"aborted", payload} or {"refused", payload} / {"missing"}.
END_ABORT = (
    PRELUDE
    + r"""
local cur, st, refused = load_owned(KEYS[1], ARGV[1], ARGV[2])
if refused then return refused end
if st.status ~= 'aborting' or not st.pos then return {'refused', cur} end
return {'aborted', end_stored(KEYS[1], cur, st, 'aborted', ARGV[3], tonumber(ARGV[4]),
                              KEYS[2], KEYS[3], KEYS[5], KEYS[4])}
"""
)

# Record CAS: replace a job that is still exactly ``expected`` with ``payload``, and move it
# between the lists as its new status says. Used by readers that decided from what they read:
# the sweep, abort, the dashboard's retry.
# KEYS: job id, active, incomplete, queued, successor.
# ARGV: expected payload, new payload, new status, ttl, score and push (for queued; see enqueue_payload).
# Returns {"ok"} or {"changed", payload} / {"missing"}.
REPLACE = (
    PRELUDE
    + r"""
local cur = redis.call('GET', KEYS[1])
if not cur then return {'missing'} end
if cur ~= ARGV[1] then return {'changed', cur} end
local status = ARGV[3]
if status == 'queued' then
    requeue_record(KEYS[1], ARGV[2], ARGV[5], ARGV[6], KEYS[2], KEYS[3], KEYS[4])
elseif TERMINAL[status] then
    end_record(KEYS[1], ARGV[2], status, tonumber(ARGV[4]), KEYS[2], KEYS[3], KEYS[4], KEYS[5], true)
else
    -- still running somewhere: it stays in the active list for its worker (or the sweep)
    redis.call('LREM', KEYS[2], 0, KEYS[1])
    redis.call('RPUSH', KEYS[2], KEYS[1])
    redis.call('SET', KEYS[1], ARGV[2])
    redis.call('PUBLISH', KEYS[1], status)
end
return {'ok'}
"""
)

# Move scheduled jobs that are due to the queued list: at most once per ``lock`` seconds across all
# workers (0: no lock). KEYS: schedule lock, incomplete, queued. ARGV: lock seconds, now (epoch s).
SCHEDULE = r"""
if tonumber(ARGV[1]) > 0 and redis.call('SET', KEYS[1], 1, 'NX', 'EX', ARGV[1]) == false then return {} end
local due = redis.call('ZRANGEBYSCORE', KEYS[2], 1, ARGV[2])
for _, id in ipairs(due) do
    redis.call('ZADD', KEYS[2], 0, id)
    redis.call('RPUSH', KEYS[3], id)
end
return due
"""

# The sweep's read: at most once per ``lock`` seconds across all workers (0: no lock). First, every
# index entry (queued, active, scheduled) whose job record is gone (evicted by a Redis under memory
# pressure, or deleted by hand) is removed: nothing could ever run it. Then every job in the active
# list with its stored record. KEYS: sweep lock, active, queued, incomplete. ARGV: lock seconds.
# Returns {ids removed, {{id, record}, ...}}.
SWEEP_SCAN = r"""
if tonumber(ARGV[1]) > 0 and redis.call('SET', KEYS[1], 1, 'NX', 'EX', ARGV[1]) == false then return {{}, {}} end
local gone, seen = {}, {}
local function check(ids)
    for _, id in ipairs(ids) do
        if not seen[id] then
            seen[id] = true
            if redis.call('EXISTS', id) == 0 then gone[#gone + 1] = id end
        end
    end
end
check(redis.call('LRANGE', KEYS[3], 0, -1))
check(redis.call('LRANGE', KEYS[2], 0, -1))
check(redis.call('ZRANGE', KEYS[4], 0, -1))
for _, id in ipairs(gone) do
    redis.call('LREM', KEYS[3], 0, id)
    redis.call('LREM', KEYS[2], 0, id)
    redis.call('ZREM', KEYS[4], id)
end
local found = {}
for i, id in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do
    found[i] = {id, redis.call('GET', id) or false}
end
return {gone, found}
"""

# Whether a job with a record is queued, running or due by ARGV[1] (epoch s); never while the queue
# is paused. Index entries whose record is gone are passed over (the sweep removes them).
# KEYS: paused, incomplete.
DUE = r"""
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local offset = 0
while true do
    local ids = redis.call('ZRANGEBYSCORE', KEYS[2], 0, ARGV[1], 'LIMIT', offset, 100)
    if #ids == 0 then return 0 end
    for _, id in ipairs(ids) do
        if redis.call('EXISTS', id) == 1 then return 1 end
    end
    offset = offset + #ids
end
"""

# The sweep drops an active-list entry whose job is missing (ARGV[1] == "") or has ended
# (ARGV[1] is the record read), if that is still so. KEYS: active, incomplete, job id.
DROP_ENTRY = r"""
local cur = redis.call('GET', KEYS[3])
if ARGV[1] == '' then
    if cur then return 0 end
    redis.call('ZREM', KEYS[2], KEYS[3])
elseif cur ~= ARGV[1] then
    return 0
end
return redis.call('LREM', KEYS[1], 0, KEYS[3])
"""

# Delete a job that is still exactly the record read (a finished job, from a bulk clean-up).
# KEYS: job id. ARGV: the record read.
DELETE_IF_UNCHANGED = r"""
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])
"""

# The sweep puts back a job that was moved to the active list but never marked ACTIVE (its
# worker died in between). KEYS: active, queued, job id. ARGV: the record the sweep read.
RELIST = r"""
if redis.call('GET', KEYS[3]) ~= ARGV[1] then return 0 end
if redis.call('LREM', KEYS[1], 0, KEYS[3]) == 0 then return 0 end
redis.call('LPUSH', KEYS[2], KEYS[3])
return 1
"""

# bench/pieces.py's alternative to the header: every read a cjson.decode, every rewrite a decode and
# cjson.encode (which is why it is not used: see the module docstring).
PLAIN_CODEC = r"""
local function read(payload)
    local ok, job = pcall(cjson.decode, payload)
    if not ok or type(job) ~= 'table' then
        return {status = 'unknown', attempts = 0, started = '0', touched = '0', completed = '0', worker = ''}
    end
    return {status = job.status or 'new', attempts = tonumber(job.attempts) or 0,
            started = tostring(job.started or 0), touched = tostring(job.touched or 0),
            completed = tostring(job.completed or 0),
            worker = type(job.worker_id) == 'string' and job.worker_id or '', pos = 1}
end

local function rewrite(payload, st)
    local job = cjson.decode(payload)
    job.status, job.attempts = st.status, st.attempts
    job.started, job.touched, job.completed = tonumber(st.started), tonumber(st.touched), tonumber(st.completed)
    if st.worker ~= '' then job.worker_id = st.worker else job.worker_id = cjson.null end
    return cjson.encode(job)
end
"""
_HEADER_CODEC = PRELUDE[PRELUDE.index("local function read(payload)") : PRELUDE.index("-- The stored record of a job")]


def source(name: str, header_first: bool = True) -> str:
    """The Lua of script ``name`` (``enqueue``, ``take``...); without ``header_first``, with PLAIN_CODEC."""
    script = globals()[name.upper()]
    return script if header_first else script.replace(_HEADER_CODEC, PLAIN_CODEC)
