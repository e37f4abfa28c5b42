"""Highlighted snippets: escaped text with <mark> around the matches, safe to put in a page."""

from __future__ import annotations

import re

from django.utils.html import escape

from .backends.base import MARK_END, MARK_START

_MARKERS = re.compile(f"[{MARK_START}{MARK_END}]")


def marked_to_html(marked: str) -> str:
    """Turn backend output with MARK_START/MARK_END around matches into HTML."""
    return escape(marked).replace(MARK_START, "<mark>").replace(MARK_END, "</mark>")


def strip_markers(value: str) -> str:
    return _MARKERS.sub("", value)


def terms_of(query: str, limit: int = 10) -> list[str]:
    return [t for t in re.findall(r"\w+", query.lower()) if len(t) > 1][:limit]


def make_snippet(text: str, terms: list[str], width: int = 200) -> str:
    """A window of ``text`` around the first term found, with every term highlighted."""
    text = " ".join(text.split())
    lowered = text.lower()
    positions = [p for p in (lowered.find(t) for t in terms) if p >= 0]
    start = max(0, min(positions) - width // 4) if positions else 0
    window = text[start : start + width]
    prefix = "…" if start > 0 else ""
    suffix = "…" if start + width < len(text) else ""
    if terms:
        pattern = re.compile("|".join(re.escape(t) for t in sorted(terms, key=len, reverse=True)), re.IGNORECASE)
        window = pattern.sub(lambda m: f"{MARK_START}{m.group(0)}{MARK_END}", window)
    return marked_to_html(prefix + window + suffix)
