"""``python -m tests.search.fake_meilisearch --port 7700``: the stand-in on its own."""

from .server import main

main()
