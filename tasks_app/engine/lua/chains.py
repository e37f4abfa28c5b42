"""The Lua of chains and groups (``engine/chains.py``): the one-call write of every step, and what a step's
end does to the steps waiting for it, inside the write that ends it.

Each step has, besides its job record, a hash of links (``saq:<queue>:chain:<key>``) with fields ``id``
(its job id), ``incomplete`` and ``queued`` (its queue's keys), ``ttl``, ``policy`` ("fail" or "skip"),
``children`` and ``parents`` (JSON lists of links keys, in order), ``pending`` (parents not yet
complete) and ``r:<parent links key>``: that parent's record as it completed (its result, for
``ctx["parent_results"]``). A step waiting for its parents is stored NEW, on no list: only its
parents' ends can queue it, and they do it in their own write, so no step is lost or queued twice.

Keys named inside a hash are not in KEYS: tasks_app runs on one Redis (no Cluster), as the rest of
the engine assumes.
"""

# Before ``end_record`` in the PRELUDE (it calls ``chain_ended`` for a step, whose write passes its links key).
CHAINING = r"""
-- Which parent ended how, for the error of each step that will not run: the parent's task, key,
-- status and the last line of its error (a traceback's last line is the exception).
local function step_failure(payload, status)
    local ok, job = pcall(cjson.decode, payload)
    local what, key, why = '?', '?', status
    if ok and type(job) == 'table' then
        what, key = tostring(job['function'] or '?'), tostring(job.key or '?')
        if type(job.error) == 'string' then
            local last
            for line in string.gmatch(job.error, '[^\n]+') do
                if string.find(line, '%S') then last = line end
            end
            if last then why = status .. ': ' .. (string.gsub(last, '^%s+', '')) end
        end
    end
    return 'parent step ' .. what .. ' (' .. key .. ') ' .. why
end

-- A chain step has ended (``status``, as ``payload``): each child still waiting either counts this parent
-- done (and is queued once all its parents are), or, when this parent did not complete, ends without
-- running (failed, or aborted for policy "skip") with an error naming this parent, and so on down.
local function chain_ended(links, payload, status, ttl)
    local children = redis.call('HGET', links, 'children')
    ttl = math.ceil(ttl or 0)
    if ttl > 0 then redis.call('EXPIRE', links, ttl) elseif ttl < 0 then redis.call('DEL', links) end
    if not children then return end
    local now_ms, failure
    for _, child in ipairs(cjson.decode(children)) do
        local c = redis.call('HMGET', child, 'id', 'incomplete', 'queued', 'ttl', 'policy')
        local cur = c[1] and redis.call('GET', c[1])
        local st = cur and read(cur)
        if st and st.status == 'new' and st.pos then
            now_ms = now_ms or (clock())
            if status == 'complete' then
                -- HSETNX: a parent counts once, however often its end is written.
                if redis.call('HSETNX', child, 'r:' .. links, payload) == 1
                        and redis.call('HINCRBY', child, 'pending', -1) <= 0 then
                    st.status = 'queued'
                    if st.queued then st.queued = now_ms end
                    enqueue_payload(c[1], rewrite(cur, st), 0, c[2], c[3], 'tail')
                    redis.call('PUBLISH', c[1], 'queued')
                end
            else
                failure = failure or step_failure(payload, status)
                local ended, why = 'failed', 'not run: '
                if c[5] == 'skip' then ended, why = 'aborted', 'skipped: ' end
                st.status, st.completed = ended, now_ms
                -- A waiting step never ran, so its record has no "error" (a null one is not written):
                -- the reason goes first in its data.
                local with = string.sub(cur, 1, st.pos - 1) .. '"error": ' .. cjson.encode(why .. failure) .. ', '
                    .. string.sub(cur, st.pos)
                local new = rewrite(with, st)
                local child_ttl = tonumber(c[4]) or 600
                store(c[1], new, child_ttl)
                redis.call('PUBLISH', c[1], ended)
                chain_ended(child, new, ended, child_ttl)
            end
        end
    end
end
"""

# Every step of a chain in one write. KEYS: per step, its job id, links key, incomplete, queued.
# ARGV: per step, its payload (QUEUED for a step with no parent, else NEW), children and parents (JSON
# lists of links keys), ttl, policy. ``queued`` is stamped now on each. If any step's job exists already
# (an outbox row delivered twice), nothing is written. Returns {"queued", queued (ms)} or
# {"exists", step number (1-based), its payload}.
# (``records.ENQUEUE_CHAIN`` is this after the PRELUDE.)
ENQUEUE_CHAIN_BODY = r"""
local now_ms = clock()
local steps = #KEYS / 4
for i = 0, steps - 1 do
    local cur = redis.call('GET', KEYS[4 * i + 1])
    if cur then return {'exists', i + 1, cur} end
end
for i = 0, steps - 1 do
    local id, links, incomplete, queued = KEYS[4 * i + 1], KEYS[4 * i + 2], KEYS[4 * i + 3], KEYS[4 * i + 4]
    local payload, parents = stamp(ARGV[5 * i + 1], {queued = now_ms}), ARGV[5 * i + 3]
    local pending = #cjson.decode(parents)
    redis.call('DEL', links)
    redis.call('HSET', links, 'id', id, 'incomplete', incomplete, 'queued', queued, 'children', ARGV[5 * i + 2],
               'parents', parents, 'ttl', ARGV[5 * i + 4], 'policy', ARGV[5 * i + 5], 'pending', pending)
    if pending == 0 then
        enqueue_payload(id, payload, 0, incomplete, queued, 'tail')
    else
        redis.call('SET', id, payload)
    end
end
return {'queued', now_ms}
"""
