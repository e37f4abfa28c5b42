"""The ASGI application (uvicorn, daphne). It refuses to start on an unsafe configuration."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pydotorg.settings")
application = get_asgi_application()

from pydotorg.serving import refuse_unsafe_serving  # noqa: E402 - needs the settings loaded above

refuse_unsafe_serving()
