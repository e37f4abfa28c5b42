"""The documents ``bench/search.py`` indexes: pages of random words from a small vocabulary."""

from __future__ import annotations

import random

WORDS = [
    "python",
    "interpreter",
    "module",
    "package",
    "import",
    "generator",
    "iterator",
    "decorator",
    "descriptor",
    "coroutine",
    "asyncio",
    "thread",
    "process",
    "queue",
    "socket",
    "request",
    "response",
    "template",
    "model",
    "view",
    "query",
    "index",
    "search",
    "release",
    "version",
    "feature",
    "bug",
    "fix",
    "performance",
    "memory",
    "garbage",
    "collector",
    "bytecode",
    "compiler",
    "parser",
    "grammar",
    "typing",
    "protocol",
    "dataclass",
    "enum",
    "pathlib",
    "logging",
    "unittest",
    "pytest",
    "packaging",
    "wheel",
    "virtualenv",
    "pip",
]


def text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def make_pages(start: int, count: int) -> None:
    """Pages with ~100-word bodies, written without signals (bulk_create)."""
    from pydotorg.pages.models import Page

    rng = random.Random(start)
    batch = []
    for n in range(start, start + count):
        batch.append(
            Page(
                title=f"Page {n}: {text(rng, 4)}",
                path=f"bench/{n}/",
                description=text(rng, 15),
                content=text(rng, 100),
            )
        )
        if len(batch) == 5000:
            Page.objects.bulk_create(batch)
            batch = []
    Page.objects.bulk_create(batch)
