"""Lifecycle hooks configured in a test through SAQ["HOOKS"]; they record what they saw."""

calls: list[tuple[str, str | None]] = []


async def startup(ctx) -> None:
    ctx["greeting"] = "set at startup"
    calls.append(("startup", None))


def shutdown(ctx) -> None:  # a sync hook works too
    calls.append(("shutdown", None))


async def before_process(ctx) -> None:
    calls.append(("before_process", ctx["job"].function))


async def after_process(ctx) -> None:
    calls.append(("after_process", ctx["job"].function))
