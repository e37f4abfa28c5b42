"""A plain function registered through SAQ["TASK_FUNCTIONS"] in a test, the original setup's style."""


def plain_function(ctx, value: int = 0) -> int:
    return value * 2
