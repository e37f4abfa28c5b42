"""SAQ's own web monitor, served beside the worker (``runworker --web``).

It has no authentication of its own, so it is never served off loopback without
credentials, and it answers only requests addressed to it: the ``Host`` header must
name it (no DNS rebinding), and a write (retry, abort) must come from its own page
(the ``Origin``, or failing that the ``Referer``, must be its own origin: no cross-site
request forgery).
"""

from __future__ import annotations

import ipaddress
import logging
from urllib.parse import urlsplit

from saq import Queue

from .. import conf
from ..exceptions import UnsafeBind

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

logger = logging.getLogger("tasks_app.monitor")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str) -> None:
    """Raises ``UnsafeBind`` for an address off loopback when ``SAQ["WEB"]`` sets no credentials."""
    username, password = conf.web_credentials()
    if not is_loopback(host) and not (username and password):
        raise UnsafeBind(
            f"Refusing to serve SAQ's monitor on {host}: it has no authentication of its own. "
            'Set SAQ["WEB"] = {"USERNAME": ..., "PASSWORD": ...}, or bind to 127.0.0.1 '
            "(the default) and reach it through an authenticated proxy. "
            "For a staff-only view, use the Task queues page in the Django admin."
        )


def allowed_hosts(host: str, port: int) -> frozenset[str]:
    """``Host`` header values the monitor answers: its own address, loopback names when bound to
    loopback, and ``SAQ["WEB"]["ALLOWED_HOSTS"]`` (for a proxy in front of it)."""
    names = {host}
    if is_loopback(host):
        names |= {"localhost", "127.0.0.1", "[::1]"}
    if ":" in host and not host.startswith("["):
        names.add(f"[{host}]")
    values = {f"{name}:{port}" for name in names}
    if port == 80:
        values |= names
    return frozenset(value.lower() for value in values | set(conf.web_allowed_hosts()))


def make_guard(host: str, port: int):
    from aiohttp import web

    hosts = allowed_hosts(host, port)

    @web.middleware
    async def guard(request, handler):
        requested = request.headers.get("Host", "").lower()
        if requested not in hosts:
            return web.Response(
                status=400, text=f"Unknown Host {requested!r}. Add it to SAQ['WEB']['ALLOWED_HOSTS'] if it is yours."
            )
        if request.method not in SAFE_METHODS:
            origin = request.headers.get("Origin")
            if origin is None and request.headers.get("Referer"):
                referer = urlsplit(request.headers["Referer"])
                origin = f"{referer.scheme}://{referer.netloc}"
            if origin is None or urlsplit(origin).netloc.lower() != requested:
                return web.Response(status=403, text="Cross-origin write refused: send it from the monitor's page.")
        return await handler(request)

    return guard


def api_errors():
    """Stands in for SAQ's ``exceptions`` middleware, which answers an API error with its whole
    traceback (file paths, source lines). The answer keeps SAQ's shape (``{"error": ...}``) but says
    only what went wrong; the traceback goes to the worker's log."""
    from aiohttp import web

    @web.middleware
    async def errors(request, handler):
        if not request.path.startswith("/api"):
            return await handler(request)
        try:
            return await handler(request)
        except web.HTTPException:
            raise
        except KeyError as exc:  # SAQ looks queues up by name
            return web.json_response({"error": f"No queue named {exc.args[0]!r} is served here."})
        except ValueError as exc:  # SAQ's "Job ... not found"
            return web.json_response({"error": str(exc)})
        except Exception:
            logger.exception("The monitor's %s %s failed", request.method, request.path)
            return web.json_response({"error": "Internal error; the worker's log has the details."}, status=500)

    return errors


async def serve(queues: list[Queue], host: str, port: int):
    """Start the monitor; returns the aiohttp runner to ``cleanup()`` on exit."""
    from aiohttp import web
    from saq.web.aiohttp import create_app, exceptions

    check_bind(host)
    app = create_app(queues)
    app.middlewares[:] = [make_guard(host, port), api_errors(), *(m for m in app.middlewares if m is not exceptions)]
    username, password = conf.web_credentials()
    if username and password:
        from aiohttp_basicauth import BasicAuthMiddleware

        app.middlewares.append(BasicAuthMiddleware(username=username, password=password))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
