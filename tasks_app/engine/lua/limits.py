"""Rate limits and concurrency leases in the take script (``engine/limits.py`` describes them).

Part of ``TAKE``, ``ACTIVATE`` and ``FINISH_AND_TAKE`` (``attempts.py``), after ``PRELUDE``: ``admit``
decides, in the compare-and-set that marks a job ACTIVE, whether its limits let it start; ``take_parked``
serves the jobs parked by a refusal once their time has come. A queue with no limited job never runs
either: ``activate`` calls ``admit`` only for a job whose record has limits, ``take_next`` calls
``take_parked`` only while ``<queued>:limited`` exists.
"""

from .codec import PRELUDE

ADMITTING = r"""
local LEASE_RECHECK_MS = 1000  -- engine/limits.py's
local RECENT_MS = 3600 * 1000  -- the dashboard lists the limiters used within this

-- Note a limiter as used now (the dashboard's list of limiters, engine/limits.py).
local function note_limiter(queued, name, now)
    redis.call('ZADD', queued .. ':limiters', now, name)
end

-- Park job ``id`` (QUEUED, untouched) in the waiting list of limiter ``name`` until ``at`` (ms): at
-- the head for a job that came from that list (it keeps its place), else at the tail.
local function park(id, name, at, queued, head)
    local list = queued .. ':waiting:' .. name
    if head then redis.call('LPUSH', list, id) else redis.call('RPUSH', list, id) end
    redis.call('ZADD', queued .. ':limited', at, name)
end

-- Drop the holders of a lease that no longer run (a record gone or not ACTIVE/ABORTING): a lease a
-- write never gave back cannot block its key for good.
local function prune_lease(lease)
    for _, holder in ipairs(redis.call('HKEYS', lease)) do
        local cur = redis.call('GET', holder)
        local status = cur and read(cur).status
        if status ~= 'active' and status ~= 'aborting' then redis.call('HDEL', lease, holder) end
    end
end

-- Whether job ``id`` with ``limits`` (limits_of) may start now (ms, Redis's clock): if so its start is
-- counted and its lease taken; if not it is parked (see park) and false is returned.
local function admit(id, limits, now, queued, head)
    local lease
    if limits.ckey then
        lease = lease_key(limits.ckey)
        local name = 'c:' .. limits.ckey
        note_limiter(queued, name .. ',' .. limits.most, now)
        if redis.call('HLEN', lease) >= limits.most then
            prune_lease(lease)
            if redis.call('HLEN', lease) >= limits.most then
                park(id, name, now + LEASE_RECHECK_MS, queued, head)
                return false
            end
        end
    end
    if limits.rkey then
        local window = 'saq:limit:rate:' .. limits.rkey
        local name = 'r:' .. limits.rkey
        note_limiter(queued, name .. ',' .. limits.count .. ',' .. limits.period, now)
        redis.call('ZREMRANGEBYSCORE', window, '-inf', now - limits.period)
        if redis.call('ZCARD', window) >= limits.count then
            local oldest = redis.call('ZRANGE', window, 0, 0, 'WITHSCORES')
            park(id, name, tonumber(oldest[2]) + limits.period, queued, head)
            return false
        end
        redis.call('ZADD', window, now, id .. '@' .. now)
        redis.call('PEXPIRE', window, limits.period)
    end
    if lease then redis.call('HSET', lease, id, now) end
    return true
end
"""

# After ``activate``, which it calls.
PARKED = r"""
-- The next parked job whose limiter's time has come, taken (see take_next); false if none can start.
local function take_parked(queued, active, worker, now)
    local limited = queued .. ':limited'
    for _ = 1, 10 do
        local due = redis.call('ZRANGEBYSCORE', limited, '-inf', now, 'LIMIT', 0, 1)
        if #due == 0 then return false end
        local list = queued .. ':waiting:' .. due[1]
        local id = redis.call('LMOVE', list, active, 'LEFT', 'RIGHT')
        local taken = id and activate(id, active, worker, now, queued, true)
        if redis.call('LLEN', list) == 0 then redis.call('ZREM', limited, due[1]) end
        if taken then return taken end
    end
    return false
end

-- Nothing could be taken: how long (ms) until a parked job may start, or false if none is parked.
local function parked_wait(queued, now)
    local first = redis.call('ZRANGE', queued .. ':limited', 0, 0, 'WITHSCORES')
    if #first == 0 then return false end
    return {'wait', string.format('%d', math.max(tonumber(first[2]) - tonumber(now), 1))}
end
"""

# The dashboard's read of a queue's limiters used within the last hour (most recent first, at most
# 100), on Redis's clock; those unused for a day are forgotten. KEYS: limiters, queued.
# Returns per limiter {kind ("rate"/"concurrency"), key, limit (count or jobs), period (ms, 0 for a
# lease), in use (starts in the window, or leases held), jobs waiting, last used (ms)}.
LIMITERS = (
    PRELUDE
    + r"""
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 24 * 3600 * 1000)
local out = {}
local recent = redis.call('ZREVRANGEBYSCORE', KEYS[1], '+inf', now - 3600 * 1000, 'WITHSCORES', 'LIMIT', 0, 100)
for i = 1, #recent, 2 do
    local member, used_at = recent[i], recent[i + 1]
    local kind, rest = string.sub(member, 1, 1), string.sub(member, 3)
    if kind == 'r' then
        local key, count, period = string.match(rest, '^(.*),(%d+),(%d+)$')
        local used = redis.call('ZCOUNT', 'saq:limit:rate:' .. key, '(' .. (now - tonumber(period)), '+inf')
        local waiting = redis.call('LLEN', KEYS[2] .. ':waiting:r:' .. key)
        out[#out + 1] = {'rate', key, count, period, used, waiting, used_at}
    else
        local key, most = string.match(rest, '^(.*),(%d+)$')
        local waiting = redis.call('LLEN', KEYS[2] .. ':waiting:c:' .. key)
        out[#out + 1] = {'concurrency', key, most, '0', redis.call('HLEN', lease_key(key)), waiting, used_at}
    end
end
return out
"""
)
