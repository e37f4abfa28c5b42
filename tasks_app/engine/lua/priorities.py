"""Which list the take script serves when jobs wait at priorities other than 0 (``engine/priorities.py``).

Part of ``TAKE``, ``ACTIVATE`` and ``FINISH_AND_TAKE`` (``attempts.py``), after ``PRELUDE``. A queue whose
jobs are all at priority 0 never enters it: ``take_next`` calls it only while ``<queued>:levels`` exists.
"""

# Keep in step with engine/priorities.py's AGE_EVERY (its docs state the bound it gives).
PICKING = r"""
local AGE_EVERY = 10

-- The list whose head waited longest (its ``queued`` time, Redis's clock, ms), among the queued list
-- (level 0) and the levels' lists; on a tie (the same ms) the lower level, the one aging is for.
-- ``level`` is 0 for the queued list. nil if every list is empty.
local function oldest_list(queued, levels)
    local best, best_level, best_at = nil, 0, nil
    local function consider(list, level)
        for _, id in ipairs(redis.call('LRANGE', list, 0, 3)) do
            if id ~= wake_of(queued) then
                local cur = redis.call('GET', id)
                local at = cur and tonumber(read(cur).queued or 0) or 0
                if best_at == nil or at < best_at then best, best_level, best_at = list, level, at end
                return
            end
        end
    end
    local zero = false
    for _, level in ipairs(redis.call('ZRANGE', levels, 0, -1)) do
        level = tonumber(level)
        if level > 0 and not zero then zero = true; consider(queued, 0) end
        consider(list_of(queued, level), level)
    end
    if not zero then consider(queued, 0) end
    return best, best_level
end

-- The list the next take serves and its level: the highest level that has jobs (the queued list
-- is level 0). Every AGE_EVERY-th such take instead serves the list whose first job has waited
-- longest, whatever its priority: that is what bounds the wait of a low priority.
local function pick_list(queued, levels)
    local top = redis.call('ZREVRANGE', levels, 0, 0, 'WITHSCORES')
    local level = tonumber(top[2])
    if level < 0 and redis.call('LLEN', queued) > 0 then level = 0 end
    if redis.call('INCR', queued .. ':takes') % AGE_EVERY == 0 then
        local oldest, oldest_level = oldest_list(queued, levels)
        if oldest then return oldest, oldest_level end
    end
    return list_of(queued, level), level
end
"""
