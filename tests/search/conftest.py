"""Fixtures for the search tests: a backend of choice, a clean Redis queue, content factories.

Meilisearch tests talk to the stand-in in tests/search/fake_meilisearch/ over loopback, or to a real
Meilisearch when MEILISEARCH_URL is set (each test then uses its own index names).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from pydotorg.search.backends import DATABASE, MEILISEARCH

from .fake_meilisearch import FakeMeilisearchServer


@pytest.fixture
def clean_queue(redis_db):
    return redis_db


@pytest.fixture
def db_backend(settings):
    settings.SEARCH_BACKEND = DATABASE


@pytest.fixture(scope="session")
def meilisearch_url():
    real = os.environ.get("MEILISEARCH_URL")
    if real:
        yield real
        return
    server = FakeMeilisearchServer().start()
    yield server.url
    server.stop()


@pytest.fixture
def meili(settings, meilisearch_url):
    """The Meilisearch backend, on an index of this test's own."""
    settings.SEARCH_BACKEND = MEILISEARCH
    settings.MEILISEARCH_URL = meilisearch_url
    settings.MEILISEARCH_API_KEY = os.environ.get("MEILISEARCH_API_KEY") or None
    settings.MEILISEARCH_INDEX = f"test_{uuid.uuid4().hex[:12]}"
    yield settings.MEILISEARCH_INDEX
    asyncio.run(_drop_indexes(meilisearch_url, settings.MEILISEARCH_API_KEY, settings.MEILISEARCH_INDEX))


async def _drop_indexes(url: str, key: str | None, prefix: str) -> None:
    from meilisearch_python_sdk import AsyncClient

    async with AsyncClient(url, key) as client:
        for index in await client.get_indexes(limit=1000) or []:
            if index.uid.startswith(prefix):
                await client.wait_for_task((await index.delete()).task_uid)


def run_worker(*args: str) -> None:
    """``runworker --burst`` in-process: everything queued (and retries due soon) is processed."""
    call_command("runworker", "--burst", *args, verbosity=0)


@pytest.fixture
def make_page(db):
    from pydotorg.pages.models import Page

    def make(title: str = "Installing Python", content: str = "How to install Python on Windows.", **kw):
        kw.setdefault("path", f"p/{uuid.uuid4().hex[:8]}/")
        return Page.objects.create(title=title, content=content, **kw)

    return make


@pytest.fixture
def make_job(db):
    from pydotorg.jobs.models import Job

    def make(**kw):
        values = {
            "job_title": "Django developer",
            "company_name": "Snake Oil Ltd",
            "city": "Lisbon",
            "country": "Portugal",
            "description": "Build web apps with Django.",
            "status": "approved",
            "expires": timezone.now() + timedelta(days=30),
        }
        return Job.objects.create(**{**values, **kw})

    return make
