"""A plain function registered through SAQ["TASK_FUNCTIONS"] in a test, the original setup's style."""

import functools


def plain_function(ctx, value: int = 0) -> int:
    return value * 2


def without_ctx(*, value: int = 0) -> int:  # no worker could call it: SAQ passes the job's context first
    return value


def generates(ctx):  # its result would be a generator, which cannot be stored
    yield 1


# A name too long for a task (a cron entry's runs are keyed "cron:<name>", and a job key holds 255).
exec(f"def {'f' * 201}(ctx):\n    return None")


partial_function = functools.partial(plain_function, value=1)  # no __name__ to register it under
