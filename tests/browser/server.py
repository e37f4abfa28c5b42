"""Serve the site's WSGI application on a free loopback port, as a production server would.

    python -m tests.browser.server      prints "serving http://127.0.0.1:PORT/", then serves

It imports ``pydotorg.wsgi.application`` (WhiteNoise, the serving checks) with the settings
in DJANGO_SETTINGS_MODULE, and serves each request in a thread of its own.
"""

import os


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.browser.settings")
    from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler

    from pydotorg.wsgi import application

    # Port 0: the kernel picks a free port, so parallel runs cannot collide.
    server = ThreadedWSGIServer(("127.0.0.1", 0), WSGIRequestHandler, allow_reuse_address=False)
    server.set_app(application)
    print(f"serving http://127.0.0.1:{server.server_port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
