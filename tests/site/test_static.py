"""Static files with DEBUG off, as in production: collectstatic's hashed, compressed files, served by WhiteNoise."""

from __future__ import annotations

import re

import pytest
from django.core.management import call_command
from django.test import Client, override_settings

from pydotorg.settings import STORAGES

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def collected(tmp_path_factory):
    """Production's static settings (tests otherwise serve from the apps), after collectstatic."""
    root = tmp_path_factory.mktemp("static")
    production = override_settings(
        STORAGES=STORAGES, STATIC_ROOT=root, WHITENOISE_USE_FINDERS=False, WHITENOISE_AUTOREFRESH=False, DEBUG=False
    )
    with production:
        call_command("collectstatic", "--noinput", verbosity=0)
        yield root


def stylesheets(html: str) -> list[str]:
    return re.findall(r'<link rel="stylesheet"[^>]*href="([^"]+)"', html)


@pytest.mark.parametrize(("page", "css"), [("/admin/login/", "admin/css/base"), ("/", "pydotorg/css/site")])
def test_pages_link_hashed_stylesheets_that_are_served_as_css(collected, page, css):
    client = Client()
    html = client.get(page).content.decode()
    (url,) = [u for u in stylesheets(html) if css in u]
    assert re.fullmatch(rf"/static/{css}\.[0-9a-f]{{12}}\.css", url), url
    response = client.get(url)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/css")
    assert "immutable" in response["Cache-Control"] and "max-age=315360000" in response["Cache-Control"]
    assert b"{" in b"".join(response.streaming_content)


def test_compressed_copies_are_served_to_browsers_that_accept_them(collected):
    html = Client().get("/admin/login/").content.decode()
    url = next(u for u in stylesheets(html) if "admin/css/base" in u)
    assert (collected / url.removeprefix("/static/")).with_suffix(".css.gz").is_file()
    response = Client().get(url, headers={"accept-encoding": "gzip"})
    assert response["Content-Encoding"] == "gzip" and response["Content-Type"].startswith("text/css")


def test_a_missing_static_file_is_a_404_not_an_error(collected):
    assert Client().get("/static/admin/css/nope.css").status_code == 404
