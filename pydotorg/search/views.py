"""/search/ (HTML) and /api/search/ (JSON) over whichever backend is configured."""

from __future__ import annotations

import logging
from dataclasses import replace

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from pydotorg.query import BadQuery

from .backends import SearchUnavailable, get_backend
from .backends.base import SearchResults
from .documents import TYPES, safe_url
from .forms import MAX_PAGE, MAX_QUERY_LENGTH, PER_PAGE, SearchRequest, parse

logger = logging.getLogger("pydotorg.search")

UNAVAILABLE = "Search is temporarily unavailable. Please try again in a few minutes."


async def run(request: SearchRequest) -> SearchResults:
    if not request.query:
        return SearchResults(query="", total=0)
    results = await get_backend().search(request.query, request.content_type, limit=PER_PAGE, offset=request.offset)
    # Documents indexed before a link was checked as strictly as now must not carry it to visitors.
    return replace(results, hits=[replace(hit, url=safe_url(hit.url)) for hit in results.hits])


async def search_page(request: HttpRequest) -> HttpResponse:
    context: dict = {"types": [(name, spec.label) for name, spec in TYPES.items()]}
    status = 200
    try:
        search = parse(request.GET)
        context["search"] = search
        results = await run(search)
    except BadQuery as exc:
        context["error"], status = str(exc), 400
        context["query"] = request.GET.get("q", "")[:MAX_QUERY_LENGTH]
    except SearchUnavailable as exc:
        logger.warning("Search unavailable: %s", exc)
        context["unavailable"], status = UNAVAILABLE, 503
        context["query"] = search.query
    else:
        context["query"] = search.query
        context["results"] = results
        # Not past the last page a query may ask for (a link to it would be a 400).
        context["has_next"] = search.offset + len(results.hits) < results.total and search.page < MAX_PAGE
    return render(request, "search/search.html", context, status=status)


async def search_api(request: HttpRequest) -> JsonResponse:
    try:
        search = parse(request.GET)
        results = await run(search)
    except BadQuery as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    except SearchUnavailable as exc:
        logger.warning("Search unavailable: %s", exc)
        return JsonResponse({"error": UNAVAILABLE}, status=503)
    return JsonResponse(
        {"query": results.query, "total": results.total, "hits": [hit.as_dict() for hit in results.hits]}
    )
