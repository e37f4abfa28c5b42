"""Highlighted snippets: escaped text with <mark> around the matches, safe to put in a page.

A backend marks the matches in the start of a document's text (``HIGHLIGHT_CHARS``: a
huge document costs no more than a normal one), with MARK_START/MARK_END around each;
:func:`crop` then keeps about ``SNIPPET_WORDS`` words around the first match, exactly as
written (leading short words and punctuation included), and :func:`marked_to_html` turns
it into HTML.
"""

from __future__ import annotations

import re

from django.utils.html import escape

from .backends.base import LESS_THAN, MARK_END, MARK_START

# Characters of a document's text that highlighting reads; a match further in still finds
# the document, and its snippet is then the start of the text.
HIGHLIGHT_CHARS = 20_000
SNIPPET_WORDS = 35
# Words of context before a match that is not near the start, unless its sentence starts a little earlier.
LEAD_WORDS = 8
LOOKBACK_WORDS = 15
ELLIPSIS = "…"

# The backends' own characters, never a document's: LESS_THAN too, else one in a document would show as "<".
_MARKERS = re.compile(f"[{MARK_START}{MARK_END}{LESS_THAN}]")


def marked_to_html(marked: str) -> str:
    """Turn text with MARK_START/MARK_END around matches into HTML, whitespace collapsed."""
    html = escape(" ".join(marked.split())).replace(MARK_START, "<mark>").replace(MARK_END, "</mark>")
    return html.replace(LESS_THAN, "&lt;")


def strip_markers(value: str) -> str:
    return _MARKERS.sub("", value)


def terms_of(query: str, limit: int = 10) -> list[str]:
    return [t for t in re.findall(r"\w+", query.lower()) if len(t) > 1][:limit]


def crop(marked: str, more_after: bool = False, width: int = SNIPPET_WORDS) -> str:
    """HTML of about ``width`` words of ``marked`` around its first match (the start if none).

    ``more_after`` says the text went on past ``marked`` (it was a prefix), so the snippet
    ends with an ellipsis even when it reaches the end of ``marked``.
    """
    words = marked.split()
    if not words:
        return ""
    first = next((i for i, word in enumerate(words) if MARK_START in word), 0)
    start = 0
    if first >= width - LEAD_WORDS:  # the match is not near the start: begin at its sentence, or just before it
        start = first - LEAD_WORDS
        for j in range(first, first - LOOKBACK_WORDS - 1, -1):
            if strip_markers(words[j - 1])[-1:] in (".", "!", "?"):
                start = j
                break
    end = min(len(words), start + width)
    window = words[start:end]
    if start > 0:
        window.insert(0, ELLIPSIS)
    if end < len(words) or more_after:
        window.append(ELLIPSIS)
    return marked_to_html(" ".join(window))


def make_snippet(text: str, terms: list[str]) -> str:
    """A snippet of plain ``text`` with every term highlighted, where the backend cannot mark matches itself."""
    head = text[:HIGHLIGHT_CHARS]
    if terms:
        pattern = re.compile("|".join(re.escape(t) for t in sorted(terms, key=len, reverse=True)), re.IGNORECASE)
        head = pattern.sub(lambda m: f"{MARK_START}{m.group(0)}{MARK_END}", head)
    return crop(head, more_after=len(text) > HIGHLIGHT_CHARS)
