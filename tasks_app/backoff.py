"""The one back-off of tasks_app (worker outages, crash-looping workers, set-aside outbox entries)."""


def backoff(failures: int, first: float, cap: float) -> float:
    """Seconds to wait after the ``failures``-th failure in a row: 0 for none, ``first`` for the first,
    doubling with each one after it, at most ``cap``."""
    if failures <= 0:
        return 0.0
    return min(cap, first * 2 ** min(failures - 1, 32))
