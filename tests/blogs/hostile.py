"""Hostile feed documents, as an attacker would serve them (the tests and bench/feeds.py use these)."""

from __future__ import annotations

from html import escape

from .server import rss

MB = 1024 * 1024


def _padded(piece: str, size: int, *, escaped: bool = True) -> bytes:
    """One item whose description is ``piece`` repeated until the document is at most ``size`` bytes."""
    unit = escape(piece, quote=False) if escaped else piece
    overhead = len(rss("<title>x</title><guid>bomb</guid><description></description>"))
    body = unit * max(1, (size - overhead) // len(unit))
    return rss(f"<title>x</title><guid>bomb</guid><description>{body}</description>")


def comment_bomb(size: int = 1_792_200) -> bytes:
    """An escaped ``<!--`` repeated 256,000 times (1.8 MB): feedparser's own sanitizer spent ~80 s on it."""
    return _padded("<!--", size)


def style_bomb(size: int = int(9.6 * MB)) -> bytes:
    """An escaped ``<p style="color: red; "`` repeated to 9.6 MB: took a worker from 306 MB to 1.8 GB."""
    return _padded('<p style="color: red; "', size)


def tag_soup(size: int = MB) -> bytes:
    """Raw ``<a`` over and over: not well-formed, so feedparser's loose parser takes it, ~5 s of CPU a MB."""
    return _padded("<a", size, escaped=False)


def item_flood(size: int = 10 * MB) -> bytes:
    """Unclosed ``<item>`` after ``<item>``: every one an entry, ~100 MB and 4 s of CPU a MB in feedparser."""
    unit = "<item><title>a</title>"
    empty = rss()
    return empty.replace(b"</channel>", (unit * ((size - len(empty)) // len(unit))).encode() + b"</channel>")


def hostile(kind: str, size: int = 10 * MB) -> bytes:
    return {"comment": comment_bomb, "style": style_bomb, "tags": tag_soup, "items": item_flood}[kind](size)
