"""The interface every search backend implements."""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any

Document = dict[str, Any]

# Highlight markers that cannot occur in documents (they are plain text without private-use
# characters); snippets are HTML-escaped first and the markers turned into <mark> after.
MARK_START = "\ue000"
MARK_END = "\ue001"
# PostgreSQL's text search parser reads "<...>" in plain text as an HTML tag and drops it, words and
# all ("a<b and c>d"): the database backend gives it this private-use stand-in for "<" instead, in the
# index and in headlines, and snippets show it as "&lt;" (its code point in SQL: ``chr(57346)``).
LESS_THAN = "\ue002"


class SearchUnavailable(Exception):
    """The search service cannot be reached or answered with an error."""


# A rebuild's unfinished index older than this was left by a crash, never by a running rebuild
# (the rebuild task's timeout is one hour), and is removed when the next rebuild starts.
STALE_REBUILD_SECONDS = 2 * 3600


class RebuildFailed(RuntimeError):
    """A rebuild step failed; the live index was left as it was."""


@dataclass(frozen=True)
class Hit:
    type: str
    id: int
    title: str
    url: str
    snippet: str  # HTML-safe: escaped text with <mark>...</mark> around matches

    def as_dict(self) -> dict[str, Any]:
        return {"type": self.type, "id": self.id, "title": self.title, "url": self.url, "snippet": self.snippet}


@dataclass(frozen=True)
class SearchResults:
    query: str
    total: int
    hits: list[Hit] = field(default_factory=list)


class Rebuild(abc.ABC):
    """A new index being built beside the live one.

    ``add`` documents, then ``commit`` to swap it in atomically (and drop the old one),
    or ``discard`` it; until ``commit`` succeeds the live index is untouched.
    """

    @abc.abstractmethod
    async def add(self, documents: list[Document]) -> None: ...

    @abc.abstractmethod
    async def commit(self) -> None: ...

    @abc.abstractmethod
    async def discard(self) -> None: ...


class BaseSearchBackend(abc.ABC):
    name: str

    @abc.abstractmethod
    async def apply(self, content_type: str, upserts: list[Document], deletes: list[int]) -> None:
        """Write ``upserts`` and remove the documents of ``deletes`` (object ids) from the live index.

        Returns once the change is applied; raises if it was not (so the job retries).
        """

    @abc.abstractmethod
    async def search(
        self, query: str, content_type: str | None = None, limit: int = 20, offset: int = 0
    ) -> SearchResults:
        """Search the live index; raises :class:`SearchUnavailable` when the service is down."""

    @abc.abstractmethod
    async def start_rebuild(self) -> Rebuild:
        """Start building a new index beside the live one (removing leftovers of crashed rebuilds)."""
