"""Where ``bench/search.py`` runs: its throwaway PostgreSQL database, its Redis database, and Django set up
for a search backend."""

from __future__ import annotations

import os
from pathlib import Path

from bench.support import bench_redis_url

ROOT = Path(__file__).resolve().parent.parent
DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench_search")
REDIS_URL = bench_redis_url()  # a Redis database of the bench's own


def configure(database_url: str, backend: str = "database", meilisearch_url: str = "") -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ["REDIS_URL"] = REDIS_URL
    os.environ["SEARCH_BACKEND"] = f"pydotorg.search.backends.{backend}"
    os.environ["MEILISEARCH_URL"] = meilisearch_url
    os.environ["DJANGO_SETTINGS_MODULE"] = "pydotorg.settings"
    os.environ["CONN_MAX_AGE"] = "0"
    import django

    django.setup()
    import logging

    logging.getLogger("pydotorg").setLevel(logging.WARNING)
    logging.getLogger("tasks_app").setLevel(logging.WARNING)


def test_database_url(name: str) -> str:
    return DATABASE_URL.rsplit("/", 1)[0] + "/" + name
