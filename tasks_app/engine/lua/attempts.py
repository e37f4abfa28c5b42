"""The scripts of an attempt's life, written by the worker that holds it (owner compare-and-sets, and
the header rewrites of take and touch). Every time they stamp is Redis's (``clock()``)."""

from .codec import PRELUDE
from .limits import ADMITTING, PARKED
from .priorities import PICKING

_TAKING = (
    PICKING
    + ADMITTING
    + r"""
-- QUEUED -> ACTIVE for the attempt this worker just moved to the active list, if its limits let it
-- start now (else it is parked, still QUEUED: see admit). ``head``: it came from a waiting list.
local function activate(id, active, worker, now, queued, head, cur)
    cur = cur or redis.call('GET', id)  -- ``cur``: its record, when the caller has read it already
    if not cur then
        -- A job whose record is gone, or a wake-up entry (priorities): nothing to run.
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
    local limits = limits_of(cur, st)
    if limits and not admit(id, limits, tonumber(now), queued, head) then
        redis.call('LREM', active, 1, id)
        return false
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
"""
    + PARKED
    + r"""

-- Nothing could be taken: the sooner of two waits (each {'wait', ms} or false).
local function sooner(a, b)
    if not a or (b and tonumber(b[2]) < tonumber(a[2])) then return b end
    return a
end

-- Nothing queued: how long (ms) until the first scheduled job is due, or false if none is scheduled.
-- From Redis's clock to the microsecond: ``now`` (whole ms) is up to 1 ms behind it.
local function scheduled_wait(incomplete)
    local due = first_due(incomplete)
    if not due then return false end
    local _, now = clock()
    return {'wait', string.format('%d', math.max(math.ceil((due - now) * 1000), 1))}
end

-- The next runnable job, moved to the active list and marked ACTIVE for ``worker``; false when
-- nothing is queued; {'wait', ms} when nothing can start but a parked job may in ms (limits) or a
-- scheduled one is due in ms; 'paused' while the queue is paused (its workers take nothing new).
-- With every job at priority 0 and none limited, neither the levels set nor the limited set exists.
-- ``incomplete``: with nothing queued, the scheduled jobs due now are listed first (as the scheduler
-- does, at most 100; not again on the second pass, ``listed``), so that a job is taken as soon as it is
-- due; if none of them could start (a record evicted, a job parked), the wait still ends when the next
-- scheduled job is due. ``moved``: the id the caller has moved from the queued list to the active one
-- (FINISH_AND_TAKE's first branch, having found the paused, limited and levels keys absent): the first pick.
local function take_next(queued, active, paused, worker, now, incomplete, listed, moved)
    local levels = queued .. ':levels'
    -- One EXISTS for the three: the hot path of a queue not paused, using neither, costs one call more than FIFO.
    local limited, either = false, false
    if not moved and redis.call('EXISTS', paused, queued .. ':limited', levels) > 0 then
        if redis.call('EXISTS', paused) == 1 then return 'paused' end
        limited = redis.call('EXISTS', queued .. ':limited') == 1
        either = limited or redis.call('EXISTS', levels) == 1
    end
    if limited then
        local taken = take_parked(queued, active, worker, now)
        if taken then return taken end
    end
    for _ = 1, 20 do
        local from, level = queued, 0
        if either and redis.call('EXISTS', levels) == 1 then from, level = pick_list(queued, levels) end
        local id = moved or redis.call('LMOVE', from, active, 'LEFT', 'RIGHT')
        moved = nil
        local woke = false
        while either and id == wake_of(queued) do
            -- A wake-up entry: this take is awake already. Dropped, without using up a pick.
            redis.call('LREM', active, 1, id)
            id = redis.call('LMOVE', from, active, 'LEFT', 'RIGHT')
            woke = true
        end
        if level ~= 0 and redis.call('LLEN', from) == 0 then redis.call('ZREM', levels, level) end
        if not id then
            -- The queued list held only a wake-up entry (pick_list counted it as a level-0 job): pick
            -- again, now that it is gone, for the job at a negative level it was pushed for.
            if level == 0 and not woke then break end
        else
            local taken = activate(id, active, worker, now, queued, false)
            if taken then return taken end
            limited = limited or redis.call('EXISTS', queued .. ':limited') == 1
        end
    end
    if not incomplete then return limited and parked_wait(queued, now) end
    if not listed and #queue_due(incomplete, queued, tonumber(now) / 1000, 100) > 0 then
        return take_next(queued, active, paused, worker, now, incomplete, true)
    end
    return sooner(limited and parked_wait(queued, now), scheduled_wait(incomplete))
end
"""
)

# KEYS: queued, active, paused, incomplete. ARGV: worker id. Takes the next runnable job and marks it
# ACTIVE for this worker, in one step. Returns {id, payload, activated (1/0)}, false, {'wait', ms} or 'paused'.
TAKE = (
    PRELUDE
    + _TAKING
    + r"""
return take_next(KEYS[1], KEYS[2], KEYS[3], ARGV[1], (clock()), KEYS[4])
"""
)

# KEYS: active, job id (just moved there by BLMOVE: a job's, or a wake-up entry), queued, paused, incomplete.
# ARGV: worker id. A job moved while the queue is paused goes back to the head of the queue ('paused').
# The entry this worker moved may be gone: it stalled between its BLMOVE and this script, the sweep put the
# job back on the queue (RELIST, which takes every entry off the active list), and another worker took it
# and runs it. The entry left is then that attempt's: only a second one (this worker's) may be taken off.
ACTIVATE = (
    PRELUDE
    + _TAKING
    + r"""
if not redis.call('LPOS', KEYS[1], KEYS[2]) then return false end
local held = redis.call('GET', KEYS[2])
if held then
    local status = read(held).status
    if status == 'active' or status == 'aborting' then
        if #redis.call('LPOS', KEYS[1], KEYS[2], 'COUNT', 2) > 1 then redis.call('LREM', KEYS[1], 1, KEYS[2]) end
        return false
    end
end
if redis.call('EXISTS', KEYS[4]) == 1 then
    redis.call('LREM', KEYS[1], 1, KEYS[2])
    redis.call('LPUSH', KEYS[3], KEYS[2])
    return 'paused'
end
if KEYS[2] == wake_of(KEYS[3]) then
    -- Woken for a job listed at another priority, or scheduled before any other: take the next job
    -- (from whichever list), or hear how long until the scheduled one is due.
    redis.call('LREM', KEYS[1], 1, KEYS[2])
    return take_next(KEYS[3], KEYS[1], KEYS[4], ARGV[1], (clock()), KEYS[5])
end
return activate(KEYS[2], KEYS[1], ARGV[1], (clock()), KEYS[3], false, held)
"""
)

# Owner CAS: the attempt's outcome, written by whoever holds it, ``completed`` stamped now.
# KEYS: job id, active, incomplete, queued, successor.
# ARGV: payload, status, ttl, allowed statuses (comma list), worker, attempts, then for a chain step its
# links key (``chains.py``; "" for another job when a start follows), and for this engine's worker the
# attempt's start (``started``, ms).
# An ABORTING job that fails or completes is recorded as it ended (the abort came too late).
# Given, the start tells the attempt too (its take stamped it): an outcome written again (its reply lost,
# or its replicas' confirmation late) must not land on the next job of its key, enqueued since and taken
# by the same worker at the same attempt number. SAQ's own Worker, which gives none, stamps its own start
# and may run two copies of one attempt (its tests do): for it, worker and attempts are the attempt.
# Returns {"ok", completed (ms)} or {"refused", stored payload} / {"missing"}.
_FINISH = r"""
local function finish(now)
    local cur, st, refused = load_owned(KEYS[1], ARGV[5], ARGV[6])
    if refused then return refused end
    if not allowed(st.status, ARGV[4]) then return {'refused', cur} end
    if ARGV[8] and tonumber(ARGV[8]) ~= tonumber(st.started) then return {'refused', cur} end
    local links = ARGV[7]
    if links == '' then links = nil end
    end_record(KEYS[1], stamp(ARGV[1], {completed = now}), ARGV[2], tonumber(ARGV[3]), KEYS[2], KEYS[3], KEYS[4],
               KEYS[5], st.status == 'queued', links)
    return {'ok', now}
end
"""
FINISH = PRELUDE + _FINISH + "return finish((clock()))\n"

# FINISH_AND_TAKE's first branch: the common case of a worker's hot path, before the helpers are
# defined (defining them costs more than its writes). Kept for what it gains: ``python -m
# bench.peer_costs``, section 4, redis-server's time per call 34-48 us against 48-72 us for the general
# path alone (Redis 7.0 and 6.2); bench/peers.py's redis-server CPU per no-op job 66 -> 47 us.
# The attempt it ends is ACTIVE and this worker's (attempt and start given), its record and the caller's
# have the header, and neither has limits, a chain step's links or work waiting for its key (successor);
# the queue is not paused, and uses neither priorities nor limits. Then it writes what ``finish`` writes,
# and when the job it moves off the queued list is a plain QUEUED one, marks it ACTIVE as ``activate``
# does. Otherwise nothing is written and the general path runs; once the finish is written (FAST_FINISH,
# its time FAST_NOW), ``take_next`` goes on from the job moved but not started here (FAST_ID, its first
# pick), or from an empty list. The patterns read the header as ``read`` does (the worker's id within 200
# bytes of the times). Its reads of the successor, paused, limited and levels keys come before the finish's
# writes, where the general path's come after: a Redis that refuses them (an ACL) refuses the whole call
# before anything is written. tests/tasks_app/engine/test_finish_and_take_script.py holds it to the general
# path.
_FIRST_BRANCH = r"""
local OWN = '^{"status": "active", "attempts": (%d+), "started": (%d+), "touched": %d+, "completed": %d+, '
local MINE = '^{"status": "%l+", "attempts": (%d+), "started": %d+, "touched": %d+, "completed": ()%d+(), '
local NEXT = '^{"status": "queued", "attempts": (%d+), "started": %d+, "touched": %d+, "completed": %d+, '
-- Where the caller's data starts after a header's worker (``e``: where its times end), or nil.
local function after_worker(payload, e)
    local rest = string.sub(payload, e + 1, e + 200)
    return string.match(rest, '^"worker_id": null, ()') or string.match(rest, '^"worker_id": "[%w%._:%-]*", ()')
end
if ARGV[8] and (ARGV[7] or '') == '' and string.find(ARGV[5], '^[%w%._:%-]+$')
        and string.find(',' .. ARGV[4] .. ',', ',active,', 1, true)
        and not string.find(ARGV[1], '{"limits": "', 1, true) then
    local cur = redis.call('GET', KEYS[1])
    local ok, c1, c2
    if cur then
        local attempts, started, e = nil, nil, nil
        _, e, attempts, started = string.find(cur, OWN)
        ok = e and tonumber(attempts) == tonumber(ARGV[6]) and tonumber(started) == tonumber(ARGV[8])
            and after_worker(cur, e)
            and string.sub(cur, e + 1, e + #ARGV[5] + 17) == '"worker_id": "' .. ARGV[5] .. '", '
    end
    if ok then
        local e, attempts
        _, e, attempts, c1, c2 = string.find(ARGV[1], MINE)
        -- ``rewrite`` writes the attempts it read as a whole number: the same text, as serialize writes it
        ok = e and after_worker(ARGV[1], e) and string.format('%d', tonumber(attempts)) == attempts
    end
    if ok and redis.call('EXISTS', KEYS[5], KEYS[6], KEYS[4] .. ':limited', KEYS[4] .. ':levels') == 0 then
        local t = redis.call('TIME')
        FAST_NOW = string.format('%d', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
        local payload = string.sub(ARGV[1], 1, c1 - 1) .. FAST_NOW .. string.sub(ARGV[1], c2)
        local ttl = math.ceil(tonumber(ARGV[3]))  -- as ``store``
        if ttl > 0 then
            redis.call('SET', KEYS[1], payload, 'EX', ttl)
        elseif ttl == 0 then
            redis.call('SET', KEYS[1], payload)
        else
            redis.call('DEL', KEYS[1])
        end
        redis.call('LREM', KEYS[2], 0, KEYS[1])
        redis.call('ZREM', KEYS[3], KEYS[1])
        redis.call('PUBLISH', KEYS[1], ARGV[2])
        FAST_FINISH = {'ok', FAST_NOW}
        FAST_ID = redis.call('LMOVE', KEYS[4], KEYS[2], 'LEFT', 'RIGHT')
        local nxt = FAST_ID and redis.call('GET', FAST_ID)
        if nxt and not string.find(nxt, '{"limits": "', 1, true) then
            local attempts, e
            _, e, attempts = string.find(nxt, NEXT)
            local pos = e and after_worker(nxt, e)
            if pos then
                local new = '{"status": "active", "attempts": ' .. string.format('%d', tonumber(attempts) + 1)
                    .. ', "started": ' .. FAST_NOW .. ', "touched": ' .. FAST_NOW .. ', "completed": 0, "worker_id": "'
                    .. ARGV[5] .. '", ' .. string.sub(nxt, e + pos)
                redis.call('SET', FAST_ID, new)
                redis.call('PUBLISH', FAST_ID, 'active')
                return {FAST_FINISH, {FAST_ID, new, 1}}
            end
        end
    end
end
"""

# FINISH, then TAKE for the same worker slot: one round trip per job on the hot path.
# KEYS: FINISH's, then paused. ARGV: FINISH's. Returns {finish reply, what TAKE returns}.
FINISH_AND_TAKE = (
    "local _, FAST_NOW, FAST_FINISH, FAST_ID\n"  # the first branch's outcome (all nil without it)
    + _FIRST_BRANCH
    + PRELUDE
    + _TAKING
    + _FINISH
    + r"""
local now = FAST_NOW or clock()
return {FAST_FINISH or finish(now), take_next(KEYS[4], KEYS[2], KEYS[6], ARGV[5], now, KEYS[3], false, FAST_ID)}
"""
)

# Owner CAS: put the attempt back on the queue (a retry, or a clean stop's re-queue), ``touched``
# stamped now. KEYS: job id, active, incomplete, queued, successor.
# ARGV: payload, delay (s, for push "none": due that long from now), push ("tail", "head", "none"),
# allowed statuses, worker, attempts, ttl, and for a chain step only: its links key.
# If the job is being aborted, the abort wins: it ends ABORTED instead.
# Returns {"queued"}, {"aborted", payload}, {"refused", payload} or {"missing"}.
REQUEUE = (
    PRELUDE
    + r"""
local cur, st, refused = load_owned(KEYS[1], ARGV[5], ARGV[6])
if refused then return refused end
local now_ms, now = clock()
if st.status == 'aborting' and st.pos then
    return {'aborted', end_stored(KEYS[1], cur, st, 'aborted', now_ms, tonumber(ARGV[7]),
                                  KEYS[2], KEYS[3], KEYS[5], KEYS[4], ARGV[8])}
end
if not allowed(st.status, ARGV[4]) then return {'refused', cur} end
local payload, score = stamp(ARGV[1], {touched = now_ms}), 0
if ARGV[3] == 'none' then score, payload = delayed(payload, tonumber(ARGV[2]), now) end
requeue_record(KEYS[1], payload, score, ARGV[3], KEYS[2], KEYS[3], KEYS[4], maybe_listed(cur, st))
return {'queued'}
"""
)

# Owner CAS for SAQ's ``Queue.update``: write the caller's data (``touched`` stamped now, and ``started`` when
# it marks a QUEUED job ACTIVE), keeping the stored status unless a new non-terminal one is given. Never
# writes a terminal job, never moves a job out of ABORTING. A QUEUED job may be marked ACTIVE by the next
# attempt (SAQ's own Worker does that after dequeue, which moved it to the active list; marked so while
# still waiting, it moves there now: a running job is never on a queued list, which lets a re-queue skip
# scanning them).
# KEYS: job id, active, queued. ARGV: payload, new status ("" to keep), worker, attempts.
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
if status == 'active' and st.status == 'queued' and not redis.call('LPOS', KEYS[2], KEYS[1]) then
    redis.call('LREM', list_of(KEYS[3], priority_of(cur, st)), 0, KEYS[1])
    unpark(KEYS[1], cur, KEYS[3])
    redis.call('RPUSH', KEYS[2], KEYS[1])
end
local now = clock()
local stamps = {status = status, touched = now}
-- The attempt starts now, on Redis's clock, as a take stamps it: the caller's ``started`` is its host's
-- clock, which may be off, and the sweep judges a timeout by Redis's.
if status == 'active' and st.status == 'queued' then stamps.started = now end
redis.call('SET', KEYS[1], stamp(ARGV[1], stamps))
redis.call('PUBLISH', KEYS[1], status)
return {'ok', status}
"""
)

# Heartbeat and abort check for all of one worker's running jobs, in one round trip.
# KEYS: job ids. ARGV: worker id, then per job: attempts, touch (1/0).
# Returns per job its status if this worker still holds it (active, aborting), else "lost".
TOUCH = (
    PRELUDE
    + r"""
local now = clock()
local out = {}
for i, id in ipairs(KEYS) do
    local state = 'lost'
    local cur = redis.call('GET', id)
    if cur then
        local st = read(cur)
        if (st.status == 'active' or st.status == 'aborting') and owned(st, ARGV[1], tonumber(ARGV[2 * i])) then
            state = st.status
            if ARGV[1 + 2 * i] == '1' and st.pos then
                st.touched = now
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
# KEYS: job id, active, incomplete, queued, successor. ARGV: worker, attempts, ttl, (a chain step's) links key.
# Returns {"aborted", payload} or {"refused", payload} / {"missing"}.
END_ABORT = (
    PRELUDE
    + r"""
local cur, st, refused = load_owned(KEYS[1], ARGV[1], ARGV[2])
if refused then return refused end
if st.status ~= 'aborting' or not st.pos then return {'refused', cur} end
return {'aborted', end_stored(KEYS[1], cur, st, 'aborted', (clock()), tonumber(ARGV[3]),
                              KEYS[2], KEYS[3], KEYS[5], KEYS[4], ARGV[4])}
"""
)
