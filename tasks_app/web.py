"""SAQ's own web monitor, served beside the worker, never open to the network without credentials."""

from __future__ import annotations

import ipaddress

from saq import Queue

from . import conf


class UnsafeBind(Exception):
    pass


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str) -> None:
    username, password = conf.web_credentials()
    if not is_loopback(host) and not (username and password):
        raise UnsafeBind(
            f"Refusing to serve SAQ's monitor on {host}: it has no authentication of its own. "
            'Set SAQ["WEB"] = {"USERNAME": ..., "PASSWORD": ...}, or bind to 127.0.0.1 '
            "(the default) and reach it through an authenticated proxy. "
            "For a staff-only view, use the Task queues page in the Django admin."
        )


async def serve(queues: list[Queue], host: str, port: int):
    """Start the monitor; returns the aiohttp runner to ``cleanup()`` on exit."""
    from aiohttp import web
    from saq.web.aiohttp import create_app

    check_bind(host)
    app = create_app(queues)
    username, password = conf.web_credentials()
    if username and password:
        from aiohttp_basicauth import BasicAuthMiddleware

        app.middlewares.append(BasicAuthMiddleware(username=username, password=password))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
