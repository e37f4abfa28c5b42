"""The scripts of the workers' shared chores: queueing due scheduled jobs, the sweep's reads and
writes, and a --burst worker's "anything left?". "Now" is always Redis's clock."""

from .codec import PRELUDE

# Move scheduled jobs that are due (on Redis's clock) to the queued list, at most ARGV[2] of them, the ones
# due first: at most once per ``lock`` seconds across all workers (0: no lock). KEYS: schedule lock,
# incomplete, queued. ARGV: lock seconds, most. Returns the ids moved.
SCHEDULE = (
    PRELUDE
    + r"""
if tonumber(ARGV[1]) > 0 and redis.call('SET', KEYS[1], 1, 'NX', 'EX', ARGV[1]) == false then return {} end
local t = redis.call('TIME')
return queue_due(KEYS[2], KEYS[3], tonumber(t[1]) + tonumber(t[2]) / 1000000, tonumber(ARGV[2]))
"""
)

# The sweep's read: at most once per ``lock`` seconds across all workers (0: no lock), every job in the
# active list with its stored record (a wake-up entry its worker died holding is dropped: nothing to sweep).
# KEYS: sweep lock, active, queued. ARGV: lock seconds.
# Returns {{{id, record or false}, ...}, now (epoch ms, Redis's clock), 1 if this sweep holds the lock else 0}.
SWEEP_SCAN = (
    PRELUDE
    + r"""
local t = redis.call('TIME')
local now = string.format('%d', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
if tonumber(ARGV[1]) > 0 and redis.call('SET', KEYS[1], 1, 'NX', 'EX', ARGV[1]) == false then return {{}, now, 0} end
local found = {}
for _, id in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do
    if id == wake_of(KEYS[3]) then redis.call('LREM', KEYS[2], 1, id)
    else found[#found + 1] = {id, redis.call('GET', id) or false} end
end
return {found, now, 1}
"""
)

# The next slice of the sweep's search for index entries whose job record is gone (evicted by a Redis under
# memory pressure, or deleted by hand): nothing could ever run them. Every job waiting, scheduled or running
# has an entry in the incomplete set; ``ZSCAN`` walks it ARGV[1] entries at a time from the cursor kept in
# KEYS[1], so that a queue a million jobs deep is searched in slices between which Redis serves everyone
# else, not in one script that holds it for seconds. An entry found gone leaves every list (an LREM, which
# scans the list) and the set. Those LREMs scan at most ARGV[2] list entries a call, and at least one gone
# entry is taken off: the rest of the slice waits for the next call, from the same cursor (a SCAN cursor may be
# used again; the entries taken off are no longer in the set). Mass eviction on a deep queue (10,000 of
# 100,000 records gone) held Redis 63.7 ms a call without that bound, 3.4 ms with it (``bench/deep_queue.py``).
# KEYS: cursor, incomplete, queued, active. ARGV: entries per slice, list entries its LREMs may scan.
# Returns {ids gone, next cursor ("0": the search went round), 1 if the slice stopped early (its rest next) else 0}.
SWEEP_GONE = (
    PRELUDE
    + r"""
local from = redis.call('GET', KEYS[1]) or '0'
local reply = redis.call('ZSCAN', KEYS[2], from, 'COUNT', ARGV[1])
local gone, lists, span, budget = {}, nil, 0, tonumber(ARGV[2])
for i = 1, #reply[2], 2 do
    local id = reply[2][i]
    if redis.call('EXISTS', id) == 0 then
        if not lists then
            lists = {KEYS[3], KEYS[4]}
            for _, level in ipairs(redis.call('ZRANGE', KEYS[3] .. ':levels', 0, -1)) do
                lists[#lists + 1] = list_of(KEYS[3], tonumber(level))
            end
            for _, name in ipairs(redis.call('ZRANGE', KEYS[3] .. ':limited', 0, -1)) do
                lists[#lists + 1] = KEYS[3] .. ':waiting:' .. name  -- jobs parked by their limits
            end
            for _, list in ipairs(lists) do span = span + redis.call('LLEN', list) end
        end
        if #gone > 0 and (#gone + 1) * span > budget then return {gone, from, 1} end
        for _, list in ipairs(lists) do redis.call('LREM', list, 0, id) end
        redis.call('ZREM', KEYS[2], id)
        gone[#gone + 1] = id
    end
end
if reply[1] == '0' then redis.call('DEL', KEYS[1]) else redis.call('SET', KEYS[1], reply[1], 'EX', 86400) end
return {gone, reply[1], 0}
"""
)

# Whether a job with a record is queued, running or due within ARGV[1] seconds (Redis's clock); never
# while the queue is paused. Index entries whose record is gone are passed over (the sweep removes them).
# KEYS: paused, incomplete.
DUE = r"""
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local t = redis.call('TIME')
local horizon = tonumber(t[1]) + tonumber(t[2]) / 1000000 + tonumber(ARGV[1])
local offset = 0
while true do
    local ids = redis.call('ZRANGEBYSCORE', KEYS[2], 0, horizon, 'LIMIT', offset, 100)
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

# The sweep puts back a job that was moved to the active list but never marked ACTIVE (its
# worker died in between). KEYS: active, queued, job id. ARGV: the record the sweep read.
RELIST = (
    PRELUDE
    + r"""
if redis.call('GET', KEYS[3]) ~= ARGV[1] then return 0 end
if redis.call('LREM', KEYS[1], 0, KEYS[3]) == 0 then return 0 end
list_job(KEYS[3], priority_of(ARGV[1]), KEYS[2], true)
return 1
"""
)
