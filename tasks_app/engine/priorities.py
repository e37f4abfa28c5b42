"""Priorities within one queue: a job's ``priority`` (-100..100, Django's range; default 0), higher first.

How it is stored, so that a queue whose jobs are all at priority 0 pays nothing:

- a job of priority 0 waits in the queue's queued list (SAQ's ``queued`` key), as it always did;
- a job of another priority waits in its level's list, ``<queued>:p<priority>``, and the level is in the
  sorted set ``<queued>:levels``. Its priority is written just after the job's header
  (``storage.serialize``), where every script that lists a job reads it (``lua/codec.py``'s
  ``priority_of``, ``list_job``): enqueue, retry, re-queue, the scheduler, the sweep.

The take script (``lua/attempts.py``'s ``take_next``) checks ``<queued>:levels`` with one ``EXISTS``; only
while it exists does it choose a list (``lua/priorities.py``'s ``pick_list``): the highest level with
jobs, the queued list counting as level 0; FIFO within a level. A worker blocked on the queued list
(``BLMOVE``) is woken by an entry pushed there when a job is listed at another level while the queued
list is empty; the take that meets it serves the levels.

Starvation is bounded by aging: while jobs wait at more than one level, every ``AGE_EVERY``-th take
serves the list whose first job has waited longest (by the time it was enqueued), whatever its
priority. So at least one take in ``AGE_EVERY`` goes, oldest first, to the jobs enqueued earliest:
a job is taken at the latest after ``AGE_EVERY`` takes per job enqueued before it that is still waiting
(plus ``AGE_EVERY``), however many higher-priority jobs keep arriving. Those ``AGE_EVERY``-th takes are
counted per queue, in ``<queued>:takes``.
"""

from __future__ import annotations

AGE_EVERY = 10  # the Lua's own (lua/priorities.py): keep the two in step


def level_key(queued_key: str, priority: int) -> str:
    """The list a job of ``priority`` waits in (the queued list itself for 0)."""
    return queued_key if priority == 0 else f"{queued_key}:p{priority}"


def levels_key(queued_key: str) -> str:
    """The sorted set of the levels (other than 0) that may have jobs."""
    return f"{queued_key}:levels"


def wake_key(queued_key: str) -> str:
    """The wake-up entry pushed on an empty queued list (``lua/codec.py``'s ``wake_of``): not a job id."""
    return f"{queued_key}:wake"
