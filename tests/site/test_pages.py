"""Pages: each format rendered and sanitised, served at its path; paths validated and kept in one form."""

from __future__ import annotations

import importlib

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from pydotorg.pages import paths
from pydotorg.pages.models import Page
from pydotorg.pages.rendering import render

# --- rendering --------------------------------------------------------------------------------

MARKDOWN = """# Hello

The **zanzibarquux** is a *rare* bird.

| bird | land |
|------|------|
| quux | Python |

<script>alert(1)</script><img src="x.png" onerror="alert(2)">
[click](javascript:alert(3)) <a href="javascript:alert(4)">me</a> <iframe src="https://evil.example/"></iframe>
"""

RESTRUCTUREDTEXT = """Hello
=====

The **zanzibarquux** is a *rare* bird.

.. raw:: html

   <script>alert(1)</script>

.. include:: /etc/passwd

.. csv-table::
   :file: /etc/passwd

`click <javascript:alert(3)>`_ and `docs <https://docs.python.org/>`_

.. unknown-directive:: boom

Section
-------

Text.
"""

HTML = """<h2 onclick="alert(1)">Hello</h2><p style="color:red">The <b>zanzibarquux</b></p>
<script>alert(1)</script><form action="/x"><input name="a"></form><a href="javascript:alert(3)">x</a>
<a href="https://www.python.org/">python.org</a>"""


def assert_nothing_unsafe(html: str) -> None:
    for unsafe in (
        "<script",
        "alert(1)",
        "onerror",
        "onclick",
        'href="javascript',
        "<iframe",
        "<form",
        "<input",
        "style=",
    ):
        assert unsafe not in html, unsafe


@pytest.mark.parametrize("content_format", ["html", "markdown"])
@pytest.mark.parametrize("attribute", ["blockquote cite", "q cite", "del cite", "ins cite", "a href", "img src"])
@pytest.mark.parametrize("url", ["javascript:alert(1)", " JaVa\tScript:alert(1)", "data:text/html,x", "vbscript:x"])
def test_every_url_attribute_keeps_only_web_mailto_or_relative_urls(content_format, attribute, url):
    tag, name = attribute.split()
    html = render(f'<{tag} {name}="{url}">x</{tag}>', content_format)
    assert f"{name}=" not in html, html
    for kept in ("https://www.python.org/", "mailto:psf@python.org", "/about/", "other/page/"):
        assert f'{name}="{kept}"' in render(f'<{tag} {name}="{kept}">x</{tag}>', content_format)


def test_markdown_is_rendered_and_sanitised():
    html = render(MARKDOWN, "markdown")
    assert "<h1>Hello</h1>" in html and "<strong>zanzibarquux</strong>" in html and "<em>rare</em>" in html
    assert "<table>" in html and "<td>Python</td>" in html
    assert '<img src="x.png">' in html  # the image stays, its handler does not
    assert_nothing_unsafe(html)


def test_restructuredtext_is_rendered_with_raw_and_file_insertion_disabled():
    html = render(RESTRUCTUREDTEXT, "restructuredtext")
    assert "<h2>Hello</h2>" in html and "<h3>Section</h3>" in html
    assert "<strong>zanzibarquux</strong>" in html and "<em>rare</em>" in html
    assert 'href="https://docs.python.org/"' in html
    assert "root:" not in html  # /etc/passwd was not read, by include or csv-table
    assert "unknown-directive" not in html and "System Message" not in html  # errors stay out of the page
    assert_nothing_unsafe(html)


def test_restructuredtext_ignores_a_docutils_conf_in_the_working_directory(tmp_path, monkeypatch):
    (tmp_path / "docutils.conf").write_text("[general]\nraw_enabled: yes\nfile_insertion_enabled: yes\n")
    monkeypatch.chdir(tmp_path)
    html = render(".. raw:: html\n\n   <b>raw made it</b>\n", "restructuredtext")
    assert "raw made it" not in html


def test_html_is_given_as_is_but_sanitised():
    html = render(HTML, "html")
    assert "<h2>Hello</h2>" in html and "<b>zanzibarquux</b>" in html
    assert '<a href="https://www.python.org/" rel="noopener noreferrer">python.org</a>' in html
    assert_nothing_unsafe(html)


def test_an_unknown_format_is_shown_as_escaped_text():
    assert render("<b>x</b>", "wiki") == "<pre>&lt;b&gt;x&lt;/b&gt;</pre>"


# --- the page view ----------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("content_format", "content", "heading"),
    [
        ("markdown", MARKDOWN, "<h1>Hello</h1>"),
        ("restructuredtext", RESTRUCTUREDTEXT, "<h2>Hello</h2>"),
        ("html", HTML, "<h2>Hello</h2>"),
    ],
)
def test_a_published_page_is_served_at_its_path_rendered(client, content_format, content, heading):
    Page.objects.create(title="Zanzibar", path="about/zanzibar/", content=content, content_format=content_format)
    response = client.get("/about/zanzibar/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "<h1>Zanzibar</h1>" in html and heading in html and "zanzibarquux</" in html
    assert "# Hello" not in html and "**" not in html
    assert_nothing_unsafe(html.split('<article class="content">')[1])


@pytest.mark.django_db
def test_other_spellings_of_a_path_redirect_to_its_one_form(client):
    Page.objects.create(title="License", path="about/license/", content="MIT-ish")
    for spelling in ("/About/License/", "/about/license", "/ABOUT/LICENSE"):
        response = client.get(spelling + "?ref=x")
        assert (response.status_code, response["Location"]) == (301, "/about/license/?ref=x"), spelling


@pytest.mark.django_db
def test_unpublished_pages_are_for_staff_only(admin_client):
    Page.objects.create(title="Draft", path="draft/", content="Not yet", is_published=False)
    assert Client().get("/draft/").status_code == 404
    response = admin_client.get("/draft/")
    assert response.status_code == 200 and "This page is not published" in response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/%5Cevil.example/", "/no/such/page/", "/a%20b/", "/jobs/nope/", "/..%2Fadmin/"])
def test_paths_without_a_page_are_a_friendly_404(client, url):
    response = client.get(url)
    assert response.status_code == 404
    assert "We could not find that page" in response.content.decode()


# --- paths ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("about/zanzibar/", "about/zanzibar/"),
        ("/about/zanzibar", "about/zanzibar/"),
        ("  About/Zanzibar/ ", "about/zanzibar/"),
        ("downloads/release-3.14_final.x~1", "downloads/release-3.14_final.x~1/"),
        ("admins/", "admins/"),  # only the exact first part is reserved
    ],
)
def test_paths_are_normalised_to_one_form(typed, stored):
    assert paths.normalise(typed) == stored


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("\\evil.example", "backslash"),
        ("about\\team", "backslash"),
        ("https://evil.example/", "not a whole address"),
        ("javascript:alert(1)", "not a whole address"),
        ("//evil.example", "//"),
        ("about//team", "//"),
        ("about/../admin", ". or .."),
        ("./about", ". or .."),
        ("about us", "remove ' '"),
        ("caf\u00e9/", "remove '\u00e9'"),
        ("a?b=c", "remove '='"),
        ("100%/", "remove '%'"),
        ("", "Enter a path"),
        ("/", "Enter a path"),
        ("x" * 600, "at most 500"),
        *[(f"{prefix}/x/", f"starting with {prefix}/") for prefix in paths.RESERVED_PREFIXES],
        ("Admin/", "starting with admin/"),
    ],
)
def test_paths_that_are_not_site_paths_are_refused_with_the_reason(typed, message):
    with pytest.raises(ValidationError) as caught:
        paths.normalise(typed)
    assert message in caught.value.messages[0]


def first_parts(patterns, prefix: str = "") -> set[str]:
    parts = set()
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver) and not str(pattern.pattern):
            parts |= first_parts(pattern.url_patterns, prefix)
        elif isinstance(pattern, URLPattern | URLResolver) and route and not route.startswith("<"):
            parts.add(route.split("/")[0])
    return parts


def test_every_section_of_the_site_is_a_reserved_prefix():
    from django.conf import settings

    sections = first_parts(get_resolver().url_patterns) | {settings.STATIC_URL.strip("/")}
    assert sections == set(paths.RESERVED_PREFIXES)


@pytest.mark.django_db
def test_saving_in_code_normalises_or_refuses():
    page = Page.objects.create(title="T", path="/Community/Sprints")
    assert page.path == "community/sprints/" and page.get_absolute_url() == "/community/sprints/"
    with pytest.raises(ValidationError, match="backslash"):
        Page.objects.create(title="Evil", path="\\evil.example")


def page_form(**overrides) -> dict:
    form = {"title": "Zanzibar", "path": "about/zanzibar/", "keywords": "", "description": "", "content": "# Hi"}
    return {**form, "content_format": "markdown", "is_published": "on", **overrides}


@pytest.mark.django_db
def test_the_admin_form_normalises_paths_and_explains_refusals(admin_client):
    add = reverse("admin:pages_page_add")
    assert admin_client.post(add, page_form(path="/About/Zanzibar")).status_code == 302
    assert Page.objects.get().path == "about/zanzibar/"

    response = admin_client.post(add, page_form(path="\\evil.example"))
    assert response.status_code == 200
    assert "A path cannot contain a backslash" in response.context["adminform"].form.errors["path"][0]

    response = admin_client.post(add, page_form(path="ABOUT/zanzibar"))  # the same page in another spelling
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["path"] == [
        "Another page already has this path. Choose another, or edit that page."
    ]
    assert Page.objects.count() == 1


# --- the migration that normalised existing rows ----------------------------------------------


@pytest.mark.django_db
def test_the_migration_normalises_existing_paths_and_unpublishes_what_it_cannot(capsys):
    rows = {
        "fine": "about/",
        "spelled": "/Downloads/Windows",
        "evil": "\\evil.example",
        "reserved": "admin/login",
        "taken": "ABOUT",  # normalises to about/, which "fine" already has
    }
    pks = {}
    for name, path in rows.items():  # as rows written before paths were validated
        pks[name] = Page.objects.bulk_create([Page(title=name, path=path, content="x")])[0].pk
    state = MigrationExecutor(connection).loader.project_state(("pages", "0002_page_path"))
    migration = importlib.import_module("pydotorg.pages.migrations.0002_page_path")
    with connection.schema_editor() as editor:
        migration.normalise_existing_paths(state.apps, editor)

    pages = {page.title: page for page in Page.objects.all()}
    assert (pages["fine"].path, pages["fine"].is_published) == ("about/", True)
    assert (pages["spelled"].path, pages["spelled"].is_published) == ("downloads/windows/", True)
    for name in ("evil", "reserved", "taken"):
        assert (pages[name].path, pages[name].is_published) == (rows[name], False), name
    assert pages["evil"].get_absolute_url() == "/%5Cevil.example"  # still never a link off the site
    out = capsys.readouterr().out
    assert "1 path(s) normalised; 3 page(s)" in out
    assert f"page {pks['evil']} '\\\\evil.example': A path cannot contain a backslash" in out
    assert f"page {pks['taken']} 'ABOUT': another page already has about/" in out
    assert "reindex_search page" in out
