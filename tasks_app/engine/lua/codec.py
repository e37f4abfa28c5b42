"""The Lua every script starts with: Redis's clock, the job header's reader and writer, and the writes
that move a job between the queue's lists.

A job is stored as JSON whose first fields are always, in this order, ``status``, ``attempts``,
``started``, ``touched``, ``completed``, ``worker_id``, ``queued`` and ``scheduled`` (see
``AtomicRedisQueue.serialize``). That fixed header lets a script read and rewrite a job's state and
times without decoding, and so without re-encoding, the caller's data after it (Lua numbers are
doubles and Lua tables cannot tell ``[]`` from ``{}``: a decode and re-encode would corrupt big
integers and empty lists in kwargs and results). A record written before ``queued`` and
``scheduled`` joined the header is still read: those two are then part of its data.
"""

from .chains import CHAINING

PRELUDE = (
    r"""
local TERMINAL = {complete = true, failed = true, aborted = true}
local HEADER = '^{"status": "(%l+)", "attempts": (%d+), "started": (%d+), "touched": (%d+), "completed": (%d+), '
local WORKER_NULL = '^"worker_id": null, ()'
local WORKER_STR = '^"worker_id": "([%w%._:%-]*)", ()'
local TIMES = '^"queued": (%d+), "scheduled": (%d+), ()'

-- Now on Redis's clock, the one clock every process shares: epoch milliseconds (as the text a
-- header holds) and epoch seconds (a number, with microseconds). Scripts replicate their effects,
-- so reading TIME before writing is safe on a replica too.
local function clock()
    local t = redis.call('TIME')
    local s, us = tonumber(t[1]), tonumber(t[2])
    return string.format('%d', s * 1000 + math.floor(us / 1000)), s + us / 1000000
end

-- The job's state: status, attempts, started, touched, completed, worker ('' for none), queued and
-- scheduled (nil in an older record) and pos, where the caller's data starts (nil for a job
-- written without the header).
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
            local st = {status = status, attempts = tonumber(attempts), started = started, touched = touched,
                        completed = completed, worker = worker, pos = e + pos}
            local queued, scheduled, after = string.match(payload, TIMES, st.pos)
            if queued then st.queued, st.scheduled, st.pos = queued, scheduled, after end
            return st
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
    local times = ''
    if st.queued then times = '"queued": ' .. st.queued .. ', "scheduled": ' .. st.scheduled .. ', ' end
    return '{"status": "' .. st.status .. '", "attempts": ' .. string.format('%d', st.attempts)
        .. ', "started": ' .. st.started .. ', "touched": ' .. st.touched .. ', "completed": ' .. st.completed
        .. ', "worker_id": ' .. worker .. ', ' .. times .. string.sub(payload, st.pos)
end

-- ``payload`` with the fields of ``stamps`` (header names: touched, completed, ...) set, when it
-- has the header; as it is otherwise.
local function stamp(payload, stamps)
    local st = read(payload)
    if not st.pos then return payload end
    for name, value in pairs(stamps) do
        if st[name] then st[name] = value end
    end
    return rewrite(payload, st)
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

-- Priorities (engine/priorities.py): a job of priority 0 waits in the queued list itself, so a queue
-- that uses none touches no other key. A job of another priority (-100..100, written just after the
-- header by storage.serialize) waits in its level's list, ``<queued>:p<priority>``; the set
-- ``<queued>:levels`` holds the levels that may have jobs (a stale one is dropped by the take that
-- finds its list empty). The take script serves the levels (``take_next``).
local PRIORITY = '^"priority": (%-?%d+), '

-- The priority of a job record (0 for none), from its state ``st`` (read if not given).
local function priority_of(payload, st)
    st = st or read(payload)
    if st.priority then return st.priority end
    if not st.pos then return 0 end
    return tonumber(string.match(payload, PRIORITY, st.pos)) or 0
end

local function list_of(queued, priority)
    if priority == 0 then return queued end
    return queued .. ':p' .. string.format('%d', priority)
end

-- The entry pushed on the queued list to wake a worker blocked on it (BLMOVE) when a job is listed at
-- another level: the take that meets it drops it and serves the levels. Not a job id: no record.
local function wake_of(queued)
    return queued .. ':wake'
end

-- List job ``id`` for the taking, at the head or the tail of its priority's list.
local function list_job(id, priority, queued, head)
    local list = queued
    if priority ~= 0 then
        list = list_of(queued, priority)
        redis.call('ZADD', queued .. ':levels', priority, priority)
        -- An empty queued list may have workers blocked on it: one is woken per job listed elsewhere.
        if redis.call('LLEN', queued) == 0 then redis.call('RPUSH', queued, wake_of(queued)) end
    end
    if head then redis.call('LPUSH', list, id) else redis.call('RPUSH', list, id) end
end

-- The due time (epoch s, Redis's clock) of the first scheduled job, or nil. Queued jobs score 0.
local function first_due(incomplete)
    local first = redis.call('ZRANGEBYSCORE', incomplete, 1, '+inf', 'LIMIT', 0, 1, 'WITHSCORES')
    return first[2] and tonumber(first[2])
end

-- Schedule job ``id``, due at ``score``. A job due before every other one wakes a worker blocked on
-- the empty queued list: its take then waits until that job is due, not for the scheduler's next tick.
local function schedule_job(id, score, incomplete, queued)
    local first = first_due(incomplete)
    redis.call('ZADD', incomplete, score, id)
    if (not first or tonumber(score) < first) and redis.call('LLEN', queued) == 0 then
        redis.call('RPUSH', queued, wake_of(queued))
    end
end

-- List the scheduled jobs due by ``now_s`` (epoch s), at most ``most`` (nil: all); returns their ids.
local function queue_due(incomplete, queued, now_s, most)
    local due
    if most then
        due = redis.call('ZRANGEBYSCORE', incomplete, 1, now_s, 'LIMIT', 0, most)
    else
        due = redis.call('ZRANGEBYSCORE', incomplete, 1, now_s)
    end
    for _, id in ipairs(due) do
        redis.call('ZADD', incomplete, 0, id)
        list_job(id, priority_of(redis.call('GET', id) or ''), queued, false)
    end
    return due
end

-- Limits (engine/limits.py): a limited job's meta starts, right after its header (and priority), with
-- "limits": "<rate key>,<count>,<period ms>;<lease key>,<n>" (either half empty; keys need no escaping).
local LIMITS = '^"meta": {"limits": "([^"]*)"'

-- A job's limits as {rkey, count, period, ckey, most} (the fields of a half not given are nil), or
-- nil for a job that has none. A plain search first: most jobs have none, and it costs a fifth of a read.
local function limits_of(payload, st)
    if not string.find(payload, '{"limits": "', 1, true) then return nil end
    st = st or read(payload)
    if not st.pos then return nil end
    local pos = string.match(payload, '^"priority": %-?%d+, ()', st.pos) or st.pos
    local found = string.match(payload, LIMITS, pos)
    if not found then return nil end
    local rate, lease = string.match(found, '^([^;]*);(.*)$')
    local out = {}
    if rate and rate ~= '' then
        local key, count, period = string.match(rate, '^(.*),(%d+),(%d+)$')
        out.rkey, out.count, out.period = key, tonumber(count), tonumber(period)
    end
    if lease and lease ~= '' then
        local key, most = string.match(lease, '^(.*),(%d+)$')
        out.ckey, out.most = key, tonumber(most)
    end
    return out
end

local function lease_key(ckey)
    return 'saq:limit:lease:' .. ckey
end

-- A job that ends or goes back on the queue gives back its concurrency lease, if it holds one; a job of
-- this queue waiting for that key is then due at once, and a worker blocked on the empty queued list
-- is woken for it. Nothing for a job without limits.
local function release_lease(id, payload, queued)
    local limits = limits_of(payload)
    if not limits or not limits.ckey then return end
    if redis.call('HDEL', lease_key(limits.ckey), id) == 0 then return end
    local limited, name = queued .. ':limited', 'c:' .. limits.ckey
    if redis.call('ZSCORE', limited, name) then
        redis.call('ZADD', limited, 0, name)
        if redis.call('LLEN', queued) == 0 then redis.call('RPUSH', queued, wake_of(queued)) end
    end
end

-- A job that ends while it may be parked by its limits (lua/limits.py's park) leaves its waiting lists:
-- a parked job aborted (or emptied) must not stay counted as queued, nor be listed twice once retried.
-- Not called on a re-queue (a retry's LREM would scan a long waiting list): only a queued job is parked,
-- and a re-queued one was running or has ended. Nothing for a job without limits.
local function unpark(id, payload, queued)
    local limits = limits_of(payload)
    if not limits then return end
    local names = {}
    if limits.rkey then names[#names + 1] = 'r:' .. limits.rkey end
    if limits.ckey then names[#names + 1] = 'c:' .. limits.ckey end
    for _, name in ipairs(names) do
        local list = queued .. ':waiting:' .. name
        if redis.call('LREM', list, 0, id) > 0 and redis.call('LLEN', list) == 0 then
            redis.call('ZREM', queued .. ':limited', name)
        end
    end
end

-- Queue a job: "tail"/"head" puts it on its queued list now (score 0); "none" leaves it to the
-- scheduler, due at ``score`` (epoch seconds on Redis's clock). A job id is never in the queued lists twice.
local function enqueue_payload(id, payload, score, incomplete, queued, push)
    redis.call('SET', id, payload)
    if push == 'none' then
        schedule_job(id, score, incomplete, queued)
    else
        redis.call('ZADD', incomplete, 0, id)
        list_job(id, priority_of(payload), queued, push == 'head')
    end
end

local function push_for(scheduled)
    if tonumber(scheduled) == 0 then return 'tail' end
    return 'none'
end

-- A job due ``delay`` seconds from now (Redis's clock): its score, and ``payload`` saying so.
local function delayed(payload, delay, now)
    local score = now + delay
    return score, stamp(payload, {scheduled = string.format('%d', math.ceil(score))})
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

"""
    + CHAINING
    + r"""
-- A job ends: out of every list (the queued list is scanned only if it may be there), stored for
-- its ttl, its status published, and work waiting for its key queued. The store goes first: a
-- script's error keeps the writes before it, and the store is the one write that can fail.
-- ``links``: a chain step's links key (``lua/chains.py``), given only for a step: its children learn of
-- its end in this same write.
local function end_record(id, payload, status, ttl, active, incomplete, queued, successor, maybe_queued, links)
    store(id, payload, ttl)
    release_lease(id, payload, queued)
    redis.call('LREM', active, 0, id)
    redis.call('ZREM', incomplete, id)
    if maybe_queued then
        redis.call('LREM', list_of(queued, priority_of(payload)), 0, id)
        unpark(id, payload, queued)
    end
    redis.call('PUBLISH', id, status)
    run_successor(id, successor, incomplete, queued)
    if links then chain_ended(links, payload, status, ttl) end
end

-- Whether the job whose record is ``cur`` (nil: none) may be on a queued list. A running job is not (its take
-- moved it off), nor an ended one (its end took it off), so moving one of those need not scan that list: LREM
-- is O(n), and a retry on a queue a million jobs deep would hold Redis for milliseconds. ``st``: read(cur).
local function maybe_listed(cur, st)
    if not cur then return true end
    local status = (st or read(cur)).status
    return not (status == 'active' or status == 'aborting' or TERMINAL[status])
end

-- A job goes back on the queue (see enqueue_payload for score and push). ``listed``: maybe_listed of its record.
local function requeue_record(id, payload, score, push, active, incomplete, queued, listed)
    release_lease(id, payload, queued)
    redis.call('LREM', active, 0, id)
    if listed then redis.call('LREM', list_of(queued, priority_of(payload)), 0, id) end
    enqueue_payload(id, payload, score, incomplete, queued, push)
    redis.call('PUBLISH', id, 'queued')
end

-- Make an ABORTING or ACTIVE job terminal from its stored record (its abort reason is kept).
local function end_stored(id, cur, st, status, now, ttl, active, incomplete, successor, queued, links)
    st.status = status
    st.completed = now
    local new = rewrite(cur, st)
    end_record(id, new, status, ttl, active, incomplete, queued, successor, false, links)
    return new
end
"""
)

# bench/pieces.py's alternative to the header: every read a cjson.decode, every rewrite a decode and
# cjson.encode (which is why it is not used: see ``engine/lua/__init__.py``).
PLAIN_CODEC = r"""
local function read(payload)
    local ok, job = pcall(cjson.decode, payload)
    if not ok or type(job) ~= 'table' then
        return {status = 'unknown', attempts = 0, started = '0', touched = '0', completed = '0', worker = ''}
    end
    return {status = job.status or 'new', attempts = tonumber(job.attempts) or 0,
            started = tostring(job.started or 0), touched = tostring(job.touched or 0),
            completed = tostring(job.completed or 0), queued = tostring(job.queued or 0),
            scheduled = tostring(job.scheduled or 0),
            worker = type(job.worker_id) == 'string' and job.worker_id or '', pos = 1,
            priority = tonumber(job.priority) or 0}
end

local function rewrite(payload, st)
    local job = cjson.decode(payload)
    job.status, job.attempts = st.status, st.attempts
    job.started, job.touched, job.completed = tonumber(st.started), tonumber(st.touched), tonumber(st.completed)
    job.queued, job.scheduled = tonumber(st.queued), tonumber(st.scheduled)
    if st.worker ~= '' then job.worker_id = st.worker else job.worker_id = cjson.null end
    return cjson.encode(job)
end
"""
HEADER_CODEC = PRELUDE[PRELUDE.index("local function read(payload)") : PRELUDE.index("-- ``payload`` with the fields")]
