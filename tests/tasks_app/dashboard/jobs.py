"""SAQ tasks for the dashboard's tests; the conftest registers them for a test and removes them after."""

import asyncio


async def add(ctx, a: int, b: int) -> int:
    return a + b


async def fail(ctx, reason: str = "boom") -> None:
    raise ValueError(reason)


async def flaky(ctx) -> str:
    """Fails on its first attempt, succeeds on any later one (e.g. a retry from the dashboard)."""
    if ctx["job"].attempts == 1:
        raise ConnectionError("upstream down")
    return "recovered"


async def sleep(ctx, seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "slept"
