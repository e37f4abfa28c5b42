"""HTML that the site shows to visitors, and the text a reader sees in it: one allow-list for all.

Every piece of HTML that did not come from our own templates (a feed entry, a Page
in any format) passes :func:`sanitize` before it is stored or rendered. Search
documents and summaries use :func:`to_text`. Link targets use :func:`is_web_url`.
"""

from __future__ import annotations

from collections.abc import Callable
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import nh3

# What a blog post or a page may contain: text structure, links, images, tables, code.
# No forms, no SVG or MathML, no style, no event handlers, no iframes.
ALLOWED_TAGS = frozenset(
    {
        "a", "abbr", "acronym", "b", "blockquote", "br", "caption", "cite", "code", "col", "colgroup",
        "dd", "del", "details", "dfn", "div", "dl", "dt", "em", "figcaption", "figure", "h1", "h2", "h3",
        "h4", "h5", "h6", "hr", "i", "img", "ins", "kbd", "li", "mark", "ol", "p", "pre", "q", "s", "samp",
        "small", "span", "strike", "strong", "sub", "summary", "sup", "table", "tbody", "td", "tfoot", "th",
        "thead", "time", "tr", "tt", "u", "ul", "var",
    }
)  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "*": {"class", "id", "lang", "title", "dir"},
    "a": {"href", "hreflang"},
    "abbr": {"title"},
    "blockquote": {"cite"},
    "col": {"span"},
    "colgroup": {"span"},
    "del": {"cite", "datetime"},
    "img": {"alt", "src", "width", "height"},
    "ins": {"cite", "datetime"},
    "ol": {"start", "reversed", "type"},
    "q": {"cite"},
    "td": {"colspan", "rowspan", "headers"},
    "th": {"colspan", "rowspan", "headers", "scope"},
    "time": {"datetime"},
}
# Only these survive in any URL-bearing attribute; a relative URL has no scheme and is kept.
URL_SCHEMES = frozenset({"http", "https", "mailto"})
WEB_SCHEMES = frozenset({"http", "https"})


# The attributes of ALLOWED_ATTRIBUTES that hold a URL.
URL_ATTRIBUTES = frozenset({"href", "src", "cite"})


def sanitize(html: str, base_url: str | None = None) -> str:
    """``html`` reduced to the allow-list above; comments dropped, links get ``rel="noopener noreferrer"``.

    Every URL attribute (``URL_ATTRIBUTES``) keeps only a relative URL or one whose scheme is in
    ``URL_SCHEMES``; any other is dropped. With ``base_url`` (HTML from elsewhere, e.g. a feed entry),
    relative URLs are made absolute against it, so they do not point into this site. Accepts any
    string (an empty one gives ``""``); never raises on malformed markup.
    """
    if not html:
        return ""
    return nh3.clean(
        html,
        tags=set(ALLOWED_TAGS),
        attributes={tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
        url_schemes=set(URL_SCHEMES),
        strip_comments=True,
        link_rel="noopener noreferrer",
        attribute_filter=_url_filter(base_url),
    )


# What a browser ignores in a URL before reading its scheme: tabs and newlines anywhere, C0 controls
# and spaces at either end (WHATWG URL), so "java\tscript:" and " javascript:" are still javascript:.
_IGNORED_ANYWHERE = str.maketrans("", "", "\t\n\r")
_IGNORED_AT_ENDS = "".join(map(chr, range(0x21)))


def _url_filter(base_url: str | None) -> Callable[[str, str, str], str | None]:
    # nh3 checks schemes only where ammonia knows an attribute holds a URL (not ``cite``), and does
    # not check what a filter returns: so every URL attribute is checked here, after joining.
    def keep_safe_urls(tag: str, attribute: str, value: str) -> str | None:
        if attribute not in URL_ATTRIBUTES:
            return value
        url = value.translate(_IGNORED_ANYWHERE).strip(_IGNORED_AT_ENDS)
        try:
            if base_url:
                url = urljoin(base_url, url)
            scheme = urlsplit(url).scheme.lower()
        except ValueError:
            return None
        if scheme and scheme not in URL_SCHEMES:
            return None
        return url if base_url else value

    return keep_safe_urls


# Elements after which a reader sees a break: their text must not run into the next word.
_BLOCKS = frozenset(
    {
        "address", "article", "aside", "blockquote", "br", "caption", "dd", "details", "div", "dl", "dt",
        "figcaption", "figure", "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main",
        "nav", "ol", "p", "pre", "section", "summary", "table", "td", "th", "tr", "ul",
    }
)  # fmt: skip
_INVISIBLE = frozenset({"script", "style", "template", "noscript", "head", "title"})


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag in _INVISIBLE:
            self.hidden += 1
        elif tag in _BLOCKS:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _INVISIBLE:
            self.hidden = max(0, self.hidden - 1)
        elif tag in _BLOCKS:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.parts.append(data)


def to_text(html: str) -> str:
    """The words a reader sees in ``html``, whitespace collapsed to single spaces.

    Block elements separate words; script and style are dropped; entities are decoded.
    The result is plain text: escape it again before putting it in HTML.
    """
    if not html:
        return ""
    if "<" not in html and "&" not in html:
        return " ".join(html.split())
    extractor = _TextExtractor()
    extractor.feed(html)
    extractor.close()
    return " ".join("".join(extractor.parts).split())


def is_web_url(value: str) -> bool:
    """True for an absolute http(s) URL with a host; False for anything else, malformed included."""
    if not isinstance(value, str) or not value or any(c in value for c in "\x00\r\n\t"):
        return False
    try:
        parts = urlsplit(value.strip())
    except ValueError:
        return False
    return parts.scheme.lower() in WEB_SCHEMES and bool(parts.hostname)
