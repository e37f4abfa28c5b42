"""A Page's content as the HTML a visitor gets: rendered by its format, then sanitised.

- Markdown: markdown-it-py (CommonMark, plus tables and strikethrough).
- reStructuredText: docutils, with ``raw``, file and URL insertion (``include``,
  ``csv-table :file:``...) disabled, no docutils.conf read, and errors kept out of the output.
- HTML: as given.

Every format's output then passes pydotorg.safehtml's allow-list, so what an editor
pastes can never carry scripts, event handlers or foreign frames into the site.
"""

from __future__ import annotations

import functools
import hashlib
import io
import logging
from typing import TYPE_CHECKING

from django.core.cache import cache
from django.utils.html import escape

from pydotorg.safehtml import sanitize

if TYPE_CHECKING:
    from markdown_it import MarkdownIt

# docutils and markdown-it are imported by the first page rendered, not with the Page model: every
# process loads the model (a task worker too), few of them render pages.

logger = logging.getLogger("pydotorg.pages")

MARKDOWN = "markdown"
RESTRUCTUREDTEXT = "restructuredtext"
HTML = "html"


@functools.cache
def _markdown() -> MarkdownIt:
    from markdown_it import MarkdownIt

    # Raw HTML inside Markdown is allowed here because the sanitizer decides what survives.
    return MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])


_DOCUTILS_SETTINGS = {
    "raw_enabled": False,
    "file_insertion_enabled": False,
    "_disable_config": True,  # a docutils.conf in the working directory could turn the above back on
    "report_level": 5,  # no system messages in what visitors see
    "halt_level": 5,  # never raise on a problem in the source: render what can be rendered
    "warning_stream": io.StringIO(),
    "doctitle_xform": False,  # keep the first heading in the body; the page has its own title
    "initial_header_level": 2,  # the page title is the h1
    "syntax_highlight": "none",
    "embed_stylesheet": False,
    "input_encoding": "unicode",
    "output_encoding": "unicode",
}

# Rendered pages are cached by content: a change of text is a new key, so nothing goes stale.
CACHE_SECONDS = 24 * 3600


def render(content: str, content_format: str) -> str:
    """Sanitised HTML for ``content`` in ``content_format`` (markdown, restructuredtext or html).

    Never raises on bad input: an unknown format, or a source docutils cannot handle,
    is shown as escaped text.
    """
    if not content:
        return ""
    key = "pages:html:" + hashlib.blake2b(f"{content_format}\0{content}".encode(), digest_size=20).hexdigest()
    html = cache.get(key)
    if html is None:
        html = sanitize(_to_html(content, content_format))
        cache.set(key, html, CACHE_SECONDS)
    return html


def _to_html(content: str, content_format: str) -> str:
    if content_format == MARKDOWN:
        return _markdown().render(content)
    if content_format == RESTRUCTUREDTEXT:
        return _restructuredtext(content)
    if content_format == HTML:
        return content
    logger.warning("Unknown page format %r; showing the content as text", content_format)
    return f"<pre>{escape(content)}</pre>"


def _restructuredtext(content: str) -> str:
    from docutils.core import publish_parts

    settings = {**_DOCUTILS_SETTINGS, "warning_stream": io.StringIO()}
    try:
        return publish_parts(source=content, writer="html5", settings_overrides=settings)["body"]
    except Exception:  # docutils has many internal failure modes on odd input; a page must still render
        logger.warning("reStructuredText could not be rendered; showing it as text", exc_info=True)
        return f"<pre>{escape(content)}</pre>"
