"""``python -m bench.distributed``: see ``run.py``."""

import sys

from .run import main

sys.exit(main())
