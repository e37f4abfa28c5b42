"""The debounce branch of the enqueue script: a burst of enqueues of one key runs once, after the last.

It is part of ``ENQUEUE`` (``records.py``), so a debounced enqueue is one atomic compare-and-set like
any other, and every way of enqueueing (single, bulk, outbox, a blocking client's EVALSHA) has it.
A plain enqueue never enters it: its cost on the hot path is one ``if`` on a missing ARGV.
"""

DEBOUNCING = r"""
-- When a debounced job is due: ``wait`` seconds from now, never later than ``most`` seconds after the
-- first enqueue of the burst (``first``, epoch ms text; ``most`` 0 = no ceiling). Epoch seconds.
local function debounced_due(first, wait, most, now)
    local due = now + wait
    if most > 0 then due = math.min(due, tonumber(first) / 1000 + most) end
    return math.max(due, now)
end

-- A debounced enqueue of ``payload`` under job id ``id`` (KEYS and times as ENQUEUE's).
-- - no job, or an ended one: queued, due ``wait`` seconds from now ('queued');
-- - a QUEUED job not yet taken: its record is replaced by ``payload`` (the last arguments win), the
--   burst's first enqueue time kept; a scheduled one is due again ``wait`` from now (ceiling: first +
--   ``most``), one already on the queued list (due, waiting for a worker) keeps its place ('debounced');
-- - an ACTIVE or ABORTING job (taken): not touched; ``payload`` waits as its successor, replacing
--   any successor already waiting, and is queued when the job ends ('deferred');
-- - anything else (a record tasks_app did not write): 'exists', as a plain enqueue.
local function debounce(id, incomplete, queued, successor, payload, wait, most, now_ms, now)
    local cur = redis.call('GET', id)
    local st = cur and read(cur)
    if st and (st.status == 'active' or st.status == 'aborting') then
        local first = now_ms
        local waiting = redis.call('HGET', successor, 'payload')
        if waiting then first = read(waiting).queued or now_ms end
        local due = debounced_due(first, wait, most, now)
        local scheduled = string.format('%d', math.ceil(due))
        redis.call('HSET', successor, 'payload', stamp(payload, {queued = first, scheduled = scheduled}),
                   'scheduled', due)
        return {'deferred', first, scheduled}
    end
    if st and not TERMINAL[st.status] and st.status ~= 'queued' then return {'exists', cur} end
    local live = st and st.status == 'queued'
    local first = now_ms
    if live and st.queued then first = st.queued end
    local due = debounced_due(first, wait, most, now)
    local scheduled = string.format('%d', math.ceil(due))
    if live then
        -- This call supersedes one that waited for an earlier attempt (the job went back for a retry).
        redis.call('DEL', successor)
        local score = tonumber(redis.call('ZSCORE', incomplete, id) or 0)
        if score == 0 then
            -- On the queued list (or being moved to a worker by BLMOVE): it runs next, with these arguments.
            scheduled = st.scheduled or '0'
            redis.call('SET', id, stamp(payload, {queued = first, scheduled = scheduled}))
            return {'debounced', first, scheduled}
        end
        redis.call('SET', id, stamp(payload, {queued = first, scheduled = scheduled}))
        schedule_job(id, due, incomplete, queued)
        return {'debounced', first, scheduled}
    end
    enqueue_payload(id, stamp(payload, {queued = first, scheduled = scheduled}), due, incomplete, queued, 'none')
    return {'queued', first, scheduled}
end
"""
