"""A STAND-IN for Meilisearch, for tests and benchmarks. It is not Meilisearch.

It serves, over real HTTP on loopback, the part of Meilisearch's API that
meilisearch-python-sdk 8 calls for this site, so the real SDK can be exercised over
a real socket where no Meilisearch binary is available:

    GET  /health, /version
    GET  /indexes, /indexes/{uid}          POST /indexes          DELETE /indexes/{uid}
    GET|PATCH /indexes/{uid}/settings      GET  /indexes/{uid}/stats
    POST|PUT  /indexes/{uid}/documents     POST /indexes/{uid}/documents/delete-batch
    POST /indexes/{uid}/search             POST /swap-indexes
    GET  /tasks, /tasks/{uid}

What it keeps from Meilisearch, because our code depends on it:
- writes are asynchronous tasks (enqueued -> processing -> succeeded/failed), processed
  one at a time in order by a background thread; a task's failure is reported on the
  task (``error.code``), not on the HTTP response, and a failed document batch adds nothing;
- document ids must be integers or strings of ``[a-zA-Z0-9_-]`` (``invalid_document_id``);
- filtering and sorting only on attributes made filterable/sortable in the settings
  (``invalid_search_filter`` / ``invalid_search_sort``), so forgetting settings fails here too;
- adding documents or settings to a missing index creates it; swapping needs both indexes;
- errors are JSON ``{"message", "code", "type", "link"}`` with Meilisearch's status codes;
- ``_formatted`` with highlight tags and cropping, ``estimatedTotalHits``.

What it simplifies: every query term must match a word (the last one as a prefix), no
typo tolerance, stop words or synonyms; ranking is a weighted count of matches by
searchable-attribute order; filters are ``attr OP value`` joined by ``AND`` (and arrays).

The same tests run against a real Meilisearch when MEILISEARCH_URL is set.

Run alone: ``python -m tests.search.fake_meilisearch --port 7700`` (from the checkout's root).

Its parts: ``store.py`` (indexes, and the tasks processed one at a time in order), ``routes.py``
(the endpoints), ``searching.py`` (filters, ranking, highlighting), ``server.py`` (the HTTP server).
"""

from .server import FakeMeilisearchServer

__all__ = ["FakeMeilisearchServer"]
