"""Settings of the site process the browser tests drive: the test settings, with production's static
files (collectstatic's hashed, compressed copies in BROWSER_STATIC_ROOT, served by WhiteNoise) and DEBUG off."""

import os
from pathlib import Path

from pydotorg import settings as production
from tests.settings import *  # noqa: F403

DEBUG = False
STORAGES = production.STORAGES
STATIC_ROOT = Path(os.environ["BROWSER_STATIC_ROOT"])
WHITENOISE_USE_FINDERS = False
WHITENOISE_AUTOREFRESH = False
