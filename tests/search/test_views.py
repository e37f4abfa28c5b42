"""/search/ and /api/search/: results, the type filter, bad input, and no markup injection."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync

from pydotorg.pages.models import Page
from pydotorg.search.models import SearchDocument
from pydotorg.search.tasks import index_content

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("db_backend")]


@pytest.fixture
def indexed(make_page, make_job):
    page = make_page(title="Asyncio tutorial", content="Write concurrent code with asyncio and await.")
    job = make_job(job_title="Asyncio specialist", description="Maintain our asyncio services.")
    async_to_sync(index_content)({}, "page", page.pk)
    async_to_sync(index_content)({}, "job", job.pk)
    return page, job


def test_api_returns_hits_of_every_type_and_filters_by_type(client, indexed):
    page, job = indexed
    body = client.get("/api/search/", {"q": "asyncio"}).json()
    assert body["query"] == "asyncio" and body["total"] == 2
    assert {(h["type"], h["id"]) for h in body["hits"]} == {("page", page.pk), ("job", job.pk)}
    assert all(set(h) == {"type", "id", "title", "url", "snippet"} for h in body["hits"])

    only_jobs = client.get("/api/search/", {"q": "asyncio", "type": "job"}).json()
    assert [(h["type"], h["url"]) for h in only_jobs["hits"]] == [("job", f"/jobs/{job.pk}/")]


def test_html_page_shows_type_title_link_snippet_and_filter(client, indexed):
    page, _ = indexed
    html = client.get("/search/", {"q": "concurrent"}).content.decode()
    assert "1 result for <strong>concurrent</strong>" in html
    assert f'<a href="{page.get_absolute_url()}">Asyncio tutorial</a>' in html
    assert "<mark>concurrent</mark>" in html
    assert '<div class="type">Page</div>' in html
    assert '<option value="job">Job</option>' in html


def test_empty_query_is_an_empty_result_not_an_error(client, indexed):
    assert client.get("/api/search/", {"q": "   "}).json() == {"query": "", "total": 0, "hits": []}
    assert client.get("/search/").status_code == 200


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"q": "x" * 201}, "201 characters long; the limit is 200"),
        ({"q": "python", "type": "video"}, "Unknown type 'video'; use one of page, blog, job, event"),
        ({"q": "python", "page": "0"}, "page must be a whole number from 1 to 50"),
    ],
)
def test_bad_input_gets_a_clear_400(client, params, message):
    response = client.get("/api/search/", params)
    assert response.status_code == 400
    assert message in response.json()["error"]
    page = client.get("/search/", params)
    assert page.status_code == 400 and message.replace("'", "&#x27;") in page.content.decode()


def test_odd_characters_in_queries_do_not_break_search(client, indexed):
    for q in ["asyncio\x00", "'; DROP TABLE x; --", "a & | ! :* <->", "(((", '"unterminated']:
        response = client.get("/api/search/", {"q": q})
        assert response.status_code == 200, q


def test_markup_in_content_is_escaped_in_results(client, make_page):
    page = make_page(title="<script>alert(1)</script>Evil", content="evil <img src=x onerror=alert(1)> payload")
    async_to_sync(index_content)({}, "page", page.pk)
    html = client.get("/search/", {"q": "payload"}).content.decode()
    assert "<script>alert(1)</script>" not in html and "onerror" not in html and '<img src="x"' not in html
    assert "<mark>payload</mark>" in html


BAD_PAGES = ["\u00b2", "9" * 4301, "0", "51", "-1", "1.5", "abc", " 1", "\u0661", "0x10"]


@pytest.mark.parametrize("page", BAD_PAGES, ids=range(len(BAD_PAGES)))
def test_a_page_that_is_not_a_small_positive_integer_is_a_400(client, indexed, page):
    response = client.get("/api/search/", {"q": "asyncio", "page": page})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error.startswith("page must be a whole number from 1 to 50, not ") and len(error) < 100
    assert client.get("/search/", {"q": "asyncio", "page": page}).status_code == 400


def test_a_stale_document_with_an_unsafe_link_is_shown_without_it(client, indexed):
    page, _ = indexed
    # As a document indexed before paths were validated could hold.
    SearchDocument.objects.filter(content_type="page", object_id=page.pk).update(url="/\\evil.example/")
    (hit,) = client.get("/api/search/", {"q": "concurrent"}).json()["hits"]
    assert hit["url"] == ""


def test_the_last_page_a_query_may_ask_for_offers_no_next_link(client, make_page, monkeypatch):
    from pydotorg.search import forms, views

    monkeypatch.setattr(forms, "MAX_PAGE", 2)
    monkeypatch.setattr(views, "MAX_PAGE", 2)
    for n in range(forms.PER_PAGE * 2 + 1):
        async_to_sync(index_content)({}, "page", make_page(title=f"Zanzibar {n}", content="zanzibar").pk)
    assert 'rel="next"' in client.get("/search/", {"q": "zanzibar", "page": 1}).content.decode()
    last = client.get("/search/", {"q": "zanzibar", "page": 2})
    assert last.status_code == 200
    assert 'rel="next"' not in last.content.decode()


def test_words_after_a_literal_angle_bracket_are_found_and_shown_as_written(client, make_page):
    # PostgreSQL's parser once read "<script> tags ... quokka" and "a<b and c>d" as HTML tags, words and all.
    content = "Templates escape <script> tags. The quokka comes after. In Python, a<b and c>d holds for wombats."
    page = make_page(title="Escaping", content=content, content_format=Page.ContentFormat.RESTRUCTUREDTEXT)
    async_to_sync(index_content)({}, "page", page.pk)
    for word in ("quokka", "wombats"):
        hits = client.get("/api/search/", {"q": word}).json()["hits"]
        assert [h["id"] for h in hits] == [page.pk], word
    snippet = client.get("/api/search/", {"q": "wombats"}).json()["hits"][0]["snippet"]
    assert "In Python, a&lt;b and c&gt;d holds for <mark>wombats</mark>" in snippet


def test_the_backends_own_characters_in_a_document_are_not_shown(client, make_page):
    page = make_page(title="Prices", content="Price \ue002 5 and \ue000marks\ue001 for wombats.")
    async_to_sync(index_content)({}, "page", page.pk)
    snippet = client.get("/api/search/", {"q": "wombats"}).json()["hits"][0]["snippet"]
    assert "&lt;" not in snippet and "\ue002" not in snippet and "Price 5 and marks for" in snippet
