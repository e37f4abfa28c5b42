"""When a cron expression next fires in a local time zone, across daylight-saving changes.

Cron expressions speak of the wall clock. On the day the clocks go back an hour, the
wall clock shows 01:30 twice; on the day they go forward, 02:30 may never be shown.
The rule here, as in Vixie cron:

- a fixed-time entry (its hour field is not a wildcard, e.g. ``30 1 * * *``) runs once
  on each local calendar day: in a repeated hour, at the first of the two times; in a
  skipped hour, right after the gap, at the same distance past it (02:30 -> 03:30);
- an entry whose hour field is a wildcard (``*/15 * * * *``) follows elapsed time: it runs
  in both copies of a repeated hour, and once at the end of a skipped one.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo

from croniter import CroniterBadDateError, croniter


def _follows_elapsed_time(expression: str) -> bool:
    fields = expression.split()
    return len(fields) >= 2 and fields[1].startswith("*")


def _instants(wall: datetime, tz: tzinfo, both_folds: bool) -> list[datetime]:
    """The UTC instants at which the wall clock in ``tz`` shows ``wall`` (naive)."""
    first = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    second = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    if first == second:
        return [first]  # an ordinary time, or one inside a skipped hour (shifted past the gap)
    # A repeated time: fold=0 is its first occurrence.
    return [first, second] if both_folds else [first]


def next_run(expression: str, tz: tzinfo, after: datetime) -> datetime:
    """The first instant strictly after ``after`` (aware) at which ``expression`` fires in ``tz``.

    Returns an aware UTC datetime. Raises ``ValueError`` (from croniter) for an invalid expression.
    """
    if after.tzinfo is None:
        raise ValueError("next_run needs an aware datetime")
    both_folds = _follows_elapsed_time(expression)
    # Start an hour early on the wall clock, so that a candidate in a repeated hour is not missed
    # when ``after`` is its second copy. Around a change, instants are not in the wall clock's
    # order (a skipped 02:30 runs at 03:30, after 03:00), so keep the earliest one found until
    # the wall clock is well past it: no change moves a time by more than an hour.
    wall = after.astimezone(tz).replace(tzinfo=None, fold=0)
    candidates = croniter(expression, wall.replace(microsecond=0) - _HOUR)
    best: datetime | None = None
    for _ in range(100_000):
        try:
            candidate = candidates.get_next(datetime)
        except CroniterBadDateError:  # croniter's own search gave up: no date matches (February 30th)
            break
        if best is not None and candidate > best.astimezone(tz).replace(tzinfo=None) + 2 * _HOUR:
            return best
        for instant in _instants(candidate, tz, both_folds):
            if instant > after and (best is None or instant < best):
                best = instant
    raise ValueError(f"Cron expression {expression!r} never fires after {after.isoformat()}.")


def never_fires(expression: str) -> bool:
    """Whether a valid cron ``expression`` matches no date at all (croniter accepts "0 0 30 2 *")."""
    try:
        next_run(expression, UTC, datetime.now(UTC))
    except ValueError:
        return True
    return False


_HOUR = timedelta(hours=1)
