"""Stored HTML passes the allow-list: no script URL survives in any attribute; summaries are summaries."""

import html
import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest

from pydotorg.blogs.models import BlogEntry
from pydotorg.safehtml import sanitize, to_text
from pydotorg.search.documents import TYPES

from .helpers import make_feed, refresh_all
from .server import rss

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("feed_settings")]

# Each one once carried javascript: (or another script scheme) into stored "safe" HTML somewhere.
VECTORS = {
    "a-href": '<a href="javascript:alert(1)">x</a>',
    "a-href-mixed-case": '<a href="JaVaScRiPt:alert(1)">x</a>',
    "a-href-leading-space": '<a href="  javascript:alert(1)">x</a>',
    "a-href-tab-entity": '<a href="java&#x09;script:alert(1)">x</a>',
    "a-href-char-refs": '<a href="&#106;&#97;vascript:alert(1)">x</a>',
    "a-href-colon-entity": '<a href="javascript&colon;alert(1)">x</a>',
    "a-href-vbscript": '<a href="vbscript:msgbox(1)">x</a>',
    "a-href-data": '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">x</a>',
    "form-action": '<form action="javascript:alert(1)"><input type="submit" value="go"></form>',
    "button-formaction": '<button formaction="javascript:alert(1)">x</button>',
    "svg-xlink-href": '<svg><a xlink:href="javascript:alert(1)"><text x="0" y="9">x</text></a></svg>',
    "svg-a-href": '<svg><a href="javascript:alert(1)"><text>x</text></a></svg>',
    "svg-animate-values": (
        '<svg><a><animate attributeName="href" values="javascript:alert(1)"/><text>x</text></a></svg>'
    ),
    "svg-set-to": '<svg><a><set attributeName="href" to="javascript:alert(1)"/><text>x</text></a></svg>',
    "svg-use-href": '<svg><use href="data:image/svg+xml;base64,PHN2Zz48L3N2Zz4=#x"/></svg>',
    "math-href": '<math href="javascript:alert(1)"><mi>x</mi></math>',
    "iframe-src": '<iframe src="javascript:alert(1)"></iframe>',
    "object-data": '<object data="javascript:alert(1)"></object>',
    "embed-src": '<embed src="javascript:alert(1)">',
    "img-src": '<img src="javascript:alert(1)" alt="x">',
    "img-srcset": '<img srcset="javascript:alert(1) 1x" alt="x">',
    "img-onerror": '<img src="https://example.org/x.png" onerror="alert(1)">',
    "video-poster": '<video poster="javascript:alert(1)"></video>',
    "blockquote-cite": '<blockquote cite="javascript:alert(1)">q</blockquote>',
    "q-cite": '<q cite="vbscript:msgbox(1)">q</q>',
    "base-href": '<base href="javascript:alert(1)//">',
    "meta-refresh": '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    "table-background": '<table background="javascript:alert(1)"><tr><td>x</td></tr></table>',
    "style-url": '<p style="background:url(javascript:alert(1))">x</p>',
    "script": "<script>alert(1)</script>",
    "link-import": '<link rel="import" href="javascript:alert(1)">',
    "isindex-action": '<isindex action="javascript:alert(1)">',
}
URL_SCHEMES = {"http", "https", "mailto"}
SCRIPTY = re.compile(
    r"javascript|vbscript|data:|alert|msgbox|<(?:form|svg|math|iframe|object|embed|base|meta|link|script)"
)


class Attributes(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.values: list[tuple[str, str, str]] = []

    def handle_starttag(self, tag, attrs):
        self.values += [(tag, name, value or "") for name, value in attrs]


def attributes(markup: str) -> list[tuple[str, str, str]]:
    parser = Attributes()
    parser.feed(markup)
    parser.close()
    return parser.values


def assert_clean(markup: str) -> None:
    assert not SCRIPTY.search(markup.lower()), markup
    assert sanitize(markup) == markup  # already reduced to the allow-list
    for tag, name, value in attributes(markup):
        assert not name.startswith("on") and name != "style", (tag, name)
        if name in ("href", "src", "cite"):
            assert urlsplit(value).scheme in URL_SCHEMES, (tag, name, value)


def test_no_script_url_survives_in_rss_descriptions(server):
    items = [
        f"<guid>{name}</guid><title>{name}</title><description>{html.escape(vector)} safe text</description>"
        for name, vector in VECTORS.items()
    ]
    make_feed(server.feed("/vectors.rss", rss(*items)))
    assert refresh_all()["entries_created"] == len(VECTORS)
    for entry in BlogEntry.objects.all():
        assert_clean(entry.summary)
        assert "safe text" in entry.summary, entry.guid


def test_no_script_url_survives_in_atom_html_and_xhtml_content(server):
    entries = []
    for name, vector in VECTORS.items():
        entries.append(
            f'<entry><id>urn:html:{name}</id><title>{name}</title><content type="html">{html.escape(vector)}'
            "</content></entry>"
        )
        if name not in ("isindex-action", "meta-refresh", "embed-src", "base-href", "link-import"):  # not XML
            xhtml = vector.replace("<svg>", '<svg xmlns="http://www.w3.org/2000/svg" '
                                   'xmlns:xlink="http://www.w3.org/1999/xlink">')  # fmt: skip
            xhtml = xhtml.replace("<math>", '<math xmlns="http://www.w3.org/1998/Math/MathML">')
            xhtml = re.sub(r"<(input|img)([^>]*)>", r"<\1\2/>", xhtml).replace("&colon;", ":")
            entries.append(
                f'<entry><id>urn:xhtml:{name}</id><title>{name}</title><content type="xhtml">'
                f'<div xmlns="http://www.w3.org/1999/xhtml">{xhtml}</div></content></entry>'
            )
    atom = (
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>V</title>'
        f"<id>urn:vectors</id>{''.join(entries)}</feed>"
    ).encode()
    make_feed(server.feed("/vectors.atom", atom, headers={"Content-Type": "application/atom+xml"}))
    assert refresh_all()["entries_created"] == len(entries)
    for entry in BlogEntry.objects.all():
        assert_clean(entry.content)
        assert_clean(entry.summary)


def test_relative_links_and_images_point_at_the_feed_not_at_this_site(server):
    body = html.escape(
        '<p><a href="/posts/2">next</a> <img src="img/a.png" alt="a"> <a href="mailto:x@y.org">m</a></p>'
    )
    url = server.feed("/blog/feed.xml", rss(f"<guid>g</guid><title>t</title><description>{body}</description>"))
    make_feed(url)
    refresh_all()
    base = url.rsplit("/blog/", 1)[0]
    assert attributes(BlogEntry.objects.get().summary) == [
        ("a", "href", f"{base}/posts/2"),
        ("a", "rel", "noopener noreferrer"),
        ("img", "src", f"{base}/blog/img/a.png"),
        ("img", "alt", "a"),
        ("a", "href", "mailto:x@y.org"),
        ("a", "rel", "noopener noreferrer"),
    ]


# --- summaries --------------------------------------------------------------------------------

ATOM_CONTENT_ONLY = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Releases</title><id>urn:releases</id>
<entry><id>urn:release:2.0</id><title>Version 2.0</title>
<content type="html">&lt;p&gt;Version &lt;b&gt;2.0&lt;/b&gt; is out.&lt;/p&gt;</content></entry>
</feed>"""

RSS_CONTENT_ENCODED_ONLY = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel><title>Releases</title>
<item><guid>urn:release:2.0</guid><title>Version 2.0</title>
<content:encoded><![CDATA[<p>Version <b>2.0</b> is out.</p>]]></content:encoded></item>
</channel></rss>"""


@pytest.mark.parametrize(
    ("document", "content_type"),
    [(ATOM_CONTENT_ONLY, "application/atom+xml"), (RSS_CONTENT_ENCODED_ONLY, "application/rss+xml")],
    ids=["atom-content", "rss-content-encoded"],
)
def test_an_entry_with_only_content_has_no_summary_and_clean_content(server, document, content_type):
    make_feed(server.feed("/releases", document, headers={"Content-Type": content_type}))
    refresh_all()

    entry = BlogEntry.objects.get()
    assert entry.summary == ""  # not the content again, and never escaped markup
    assert entry.content == "<p>Version <b>2.0</b> is out.</p>"
    document = TYPES["blog"].to_document(entry)
    assert document["content"] == "Version 2.0 is out."
    assert "<" not in document["description"] + document["content"]
    assert "&lt;" not in document["description"] + document["content"]


def test_a_summary_and_content_are_both_kept_sanitised(server):
    doc = b"""<?xml version="1.0"?><rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">
<channel><title>t</title><item><guid>g</guid><title>Both</title>
<content:encoded><![CDATA[<p onclick="x()">Full <em>text</em></p>]]></content:encoded>
<description>&lt;p&gt;Short &lt;i&gt;teaser&lt;/i&gt;&lt;/p&gt;</description></item></channel></rss>"""
    make_feed(server.feed("/both", doc))
    refresh_all()
    entry = BlogEntry.objects.get()
    assert (entry.summary, entry.content) == ("<p>Short <i>teaser</i></p>", "<p>Full <em>text</em></p>")
    assert to_text(entry.summary) == "Short teaser"
