"""The scripts of the workers' shared chores: queueing due scheduled jobs, the sweep's reads and
writes, and a --burst worker's "anything left?". "Now" is always Redis's clock."""

from .codec import PRELUDE

# Move scheduled jobs that are due (on Redis's clock) to the queued list: at most once per ``lock``
# seconds across all workers (0: no lock). KEYS: schedule lock, incomplete, queued. ARGV: lock seconds.
SCHEDULE = (
    PRELUDE
    + r"""
if tonumber(ARGV[1]) > 0 and redis.call('SET', KEYS[1], 1, 'NX', 'EX', ARGV[1]) == false then return {} end
local t = redis.call('TIME')
return queue_due(KEYS[2], KEYS[3], tonumber(t[1]) + tonumber(t[2]) / 1000000)
"""
)

# The sweep's read: at most once per ``lock`` seconds across all workers (0: no lock). First, every
# index entry (queued, active, scheduled) whose job record is gone (evicted by a Redis under memory
# pressure, or deleted by hand) is removed: nothing could ever run it. Then every job in the active
# list with its stored record. KEYS: sweep lock, active, queued, incomplete. ARGV: lock seconds.
# Returns {ids removed, {{id, record}, ...}, now (epoch ms, Redis's clock)}.
SWEEP_SCAN = (
    PRELUDE
    + r"""
local t = redis.call('TIME')
local now = string.format('%d', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
if tonumber(ARGV[1]) > 0 and redis.call('SET', KEYS[1], 1, 'NX', 'EX', ARGV[1]) == false then return {{}, {}, now} end
local gone, seen = {}, {[wake_of(KEYS[3])] = true}
local function check(ids)
    for _, id in ipairs(ids) do
        if not seen[id] then
            seen[id] = true
            if redis.call('EXISTS', id) == 0 then gone[#gone + 1] = id end
        end
    end
end
local lists = {KEYS[3]}
for _, level in ipairs(redis.call('ZRANGE', KEYS[3] .. ':levels', 0, -1)) do
    lists[#lists + 1] = list_of(KEYS[3], tonumber(level))
end
for _, name in ipairs(redis.call('ZRANGE', KEYS[3] .. ':limited', 0, -1)) do
    lists[#lists + 1] = KEYS[3] .. ':waiting:' .. name  -- jobs parked by their limits
end
for _, list in ipairs(lists) do check(redis.call('LRANGE', list, 0, -1)) end
check(redis.call('LRANGE', KEYS[2], 0, -1))
check(redis.call('ZRANGE', KEYS[4], 0, -1))
for _, id in ipairs(gone) do
    for _, list in ipairs(lists) do redis.call('LREM', list, 0, id) end
    redis.call('LREM', KEYS[2], 0, id)
    redis.call('ZREM', KEYS[4], id)
end
local found = {}
for _, id in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do
    -- A wake-up entry (priorities) its worker died holding: nothing to sweep, only to drop.
    if id == wake_of(KEYS[3]) then redis.call('LREM', KEYS[2], 1, id)
    else found[#found + 1] = {id, redis.call('GET', id) or false} end
end
return {gone, found, now}
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
