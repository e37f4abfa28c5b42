"""The stand-in's search: filters, ranking by matched words, highlighting and cropping."""

from __future__ import annotations

import re
import time
from typing import Any

from .store import ApiError, Store

WORD = re.compile(r"\w+", re.UNICODE)
CONDITION = re.compile(r"^\s*([\w.]+)\s*(!=|>=|<=|=|>|<)\s*(\"(?:[^\"\\]|\\.)*\"|'[^']*'|[^\s]+)\s*$")


def _conditions(expression: Any, filterable: list[str]) -> list[tuple[str, str, Any]] | list[list]:
    """Parse a filter into a list of AND-ed terms; a term is a condition or a list of OR-ed conditions."""
    if expression is None:
        return []
    if isinstance(expression, str):
        expression = [part for part in re.split(r"\s+AND\s+", expression) if part.strip()]
    parsed: list = []
    for item in expression:
        if isinstance(item, list):
            parsed.append([_condition(sub, filterable) for sub in item])
        else:
            parsed.append(_condition(item, filterable))
    return parsed


def _condition(text: str, filterable: list[str]) -> tuple[str, str, Any]:
    match = CONDITION.match(text)
    if not match:
        raise ApiError(400, "invalid_search_filter", f"Was expecting an operation like `attr = value`, got `{text}`.")
    attribute, op, raw = match.groups()
    if attribute not in filterable:
        raise ApiError(
            400,
            "invalid_search_filter",
            f"Attribute `{attribute}` is not filterable. Available filterable attributes are: "
            f"`{', '.join(sorted(filterable))}`.",
        )
    if raw[0] in "\"'":
        value: Any = raw[1:-1].replace('\\"', '"')
    else:
        try:
            value = float(raw)
        except ValueError:
            value = raw
    return attribute, op, value


def _holds(doc: dict[str, Any], condition: tuple[str, str, Any]) -> bool:
    attribute, op, value = condition
    actual = doc.get(attribute)
    if actual is None:
        return op == "!="
    if isinstance(value, float):
        try:
            actual = float(actual)
        except (TypeError, ValueError):
            return op == "!="
    else:
        actual = str(actual).lower()
        value = str(value).lower()
    return {
        "=": actual == value,
        "!=": actual != value,
        ">": actual > value,
        ">=": actual >= value,
        "<": actual < value,
        "<=": actual <= value,
    }[op]


def _matches(doc: dict[str, Any], filters: list) -> bool:
    for term in filters:
        if isinstance(term, list):
            if not any(_holds(doc, c) for c in term):
                return False
        elif not _holds(doc, term):
            return False
    return True


def _words(value: Any) -> list[str]:
    if isinstance(value, list):
        return [w for item in value for w in _words(item)]
    return [w.lower() for w in WORD.findall(str(value))] if value is not None else []


def _term_hit(word: str, term: str, prefix: bool) -> bool:
    return word == term or (prefix and word.startswith(term))


def _score(doc: dict[str, Any], terms: list[str], attributes: list[str]) -> float | None:
    score = 0.0
    for position, term in enumerate(terms):
        prefix = position == len(terms) - 1
        best = None
        for rank, attribute in enumerate(attributes):
            hits = sum(_term_hit(w, term, prefix) for w in _words(doc.get(attribute)))
            if hits:
                weight = (len(attributes) - rank) * 10 + min(hits, 5)
                best = max(best or 0, weight)
        if best is None:
            return None
        score += best
    return score


def _highlight(text: str, terms: list[str], pre: str, post: str) -> str:
    def mark(match: re.Match) -> str:
        word = match.group(0)
        lowered = word.lower()
        for position, term in enumerate(terms):
            if lowered == term:
                return f"{pre}{word}{post}"
            if position == len(terms) - 1 and lowered.startswith(term):
                return f"{pre}{word[: len(term)]}{post}{word[len(term) :]}"
        return word

    return WORD.sub(mark, text)


def _crop(text: str, terms: list[str], length: int, marker: str) -> str:
    words = text.split()
    if len(words) <= length:
        return text
    first = next((i for i, w in enumerate(words) if any(_term_hit(x, t, True) for x in _words(w) for t in terms)), 0)
    start = max(0, min(first - length // 3, len(words) - length))
    cropped = " ".join(words[start : start + length])
    return (marker if start > 0 else "") + cropped + (marker if start + length < len(words) else "")


def search(store: Store, body, query, uid: str) -> tuple[int, Any]:
    started = time.monotonic()
    body = body or {}
    with store.lock:
        index = store.index(uid)
        settings = index.full_settings()
        documents = list(index.documents.values())
    filters = _conditions(body.get("filter"), settings["filterableAttributes"])
    sort = body.get("sort") or []
    for rule in sort:
        attribute = rule.split(":")[0]
        if attribute not in settings["sortableAttributes"]:
            raise ApiError(
                400,
                "invalid_search_sort",
                f"Attribute `{attribute}` is not sortable. Available sortable attributes are: "
                f"`{', '.join(settings['sortableAttributes'])}`.",
            )
    searchable = settings["searchableAttributes"]
    terms = _words(body.get("q") or "")
    scored = []
    for order, doc in enumerate(documents):
        if not _matches(doc, filters):
            continue
        attributes = list(doc) if searchable == ["*"] else searchable
        score = _score(doc, terms, attributes) if terms else 0.0
        if score is not None:
            scored.append((score, order, doc))
    scored.sort(key=lambda item: (-item[0], item[1]))
    for rule in reversed(sort):
        attribute, _, direction = rule.partition(":")
        scored.sort(
            key=lambda item: (item[2].get(attribute) is None, item[2].get(attribute) or 0), reverse=direction == "desc"
        )
    offset, limit = int(body.get("offset") or 0), int(body.get("limit") if body.get("limit") is not None else 20)
    retrieve = body.get("attributesToRetrieve") or ["*"]
    highlight = body.get("attributesToHighlight") or []
    crop = body.get("attributesToCrop") or []
    pre, post = body.get("highlightPreTag", "<em>"), body.get("highlightPostTag", "</em>")
    crop_length, marker = int(body.get("cropLength") or 10), body.get("cropMarker", "…")
    hits = []
    for _, _, doc in scored[offset : offset + limit]:
        hit = dict(doc) if retrieve == ["*"] else {k: doc[k] for k in retrieve if k in doc}
        if highlight or crop:
            formatted = {}
            for key, value in hit.items():
                text = value
                if isinstance(value, str) and (key in crop or "*" in crop):
                    text = _crop(value, terms, crop_length, marker)
                if isinstance(text, str) and (key in highlight or "*" in highlight) and terms:
                    text = _highlight(text, terms, pre, post)
                formatted[key] = text if isinstance(text, str) else value
            hit["_formatted"] = formatted
        hits.append(hit)
    return 200, {
        "hits": hits,
        "query": body.get("q") or "",
        "processingTimeMs": int((time.monotonic() - started) * 1000),
        "limit": limit,
        "offset": offset,
        "estimatedTotalHits": len(scored),
    }
