"""Fetch only from the public internet: every address form, redirects, DNS answers, the admin form, the check.

Production refuses loopback, which is where the test servers listen, so these tests turn
FEEDS_ALLOW_PRIVATE_NETWORKS off, or allow 127.0.0.1 alone and keep a "secret" server on
127.0.0.2 that must never be reached.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.checks import Error, Warning
from django.urls import reverse

from pydotorg.blogs import addresses
from pydotorg.blogs.checks import check_feed_settings
from pydotorg.blogs.models import BlogEntry, Feed

from .helpers import make_feed, refresh_all
from .server import item, respond, rss, serving

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("feed_settings")]

ROOT = Path(__file__).resolve().parents[2]
DOC = rss(item(1), item(2))
REFUSED = "not a public internet address. Feeds are fetched only from public addresses"

# Every spelling of the test server's own address (127.0.0.1), which must not be reached.
LOOPBACK_SPELLINGS = {
    "dotted": "127.0.0.1",
    "decimal": "2130706433",
    "hex": "0x7f000001",
    "octal": "0177.0.0.1",
    "short": "127.1",
    "hex-short": "0x7f.1",
    "name": "localhost",
    "name-subdomain": "feeds.localhost",
    "unspecified": "0.0.0.0",  # connecting to it reaches the local host
    "ipv6-loopback": "[::1]",
    "ipv6-unspecified": "[::]",
    "ipv4-mapped": "[::ffff:127.0.0.1]",
    "ipv4-mapped-hex": "[::ffff:7f00:1]",
    "nat64": "[64:ff9b::7f00:1]",
    "6to4": "[2002:7f00:1::]",
}
# Other non-public addresses: nothing listens there, and no connection may even be tried.
OTHER_NON_PUBLIC = {
    "cloud-metadata": ("169.254.169.254", "link-local"),
    "private-10": ("10.0.0.1", "private"),
    "private-172": ("172.16.5.4", "private"),
    "private-192": ("192.168.1.1", "private"),
    "private-octal": ("012.0.0.1", "private"),  # 10.0.0.1
    "cgnat": ("100.64.0.1", "carrier-grade NAT"),
    "multicast": ("224.0.0.1", "multicast"),
    "reserved": ("240.0.0.1", "reserved"),
    "broadcast": ("255.255.255.255", "reserved"),
    "documentation": ("192.0.2.1", "private"),
    "ipv6-unique-local": ("[fc00::1]", "private"),
    "ipv6-link-local": ("[fe80::1]", "link-local"),
    "ipv6-multicast": ("[ff02::1]", "multicast"),
    "ipv4-mapped-metadata": ("[::ffff:169.254.169.254]", "link-local address in IPv4-mapped form"),
    "nat64-private": ("[64:ff9b::a00:1]", "private address in NAT64 form"),
    "nat64-local-use": ("[64:ff9b:1::a00:1]", "local-use NAT64"),
}


@pytest.fixture
def public_only(settings):
    settings.FEEDS = {**settings.FEEDS, "ALLOW_PRIVATE_NETWORKS": False}
    return settings


@pytest.mark.parametrize("host", LOOPBACK_SPELLINGS.values(), ids=LOOPBACK_SPELLINGS.keys())
def test_every_spelling_of_loopback_is_refused_before_connecting(server, public_only, host):
    server.feed("/feed.xml", DOC)
    feed = make_feed(server.url("/feed.xml", host=host))

    assert refresh_all()["feeds_failed"] == 1

    feed.refresh_from_db()
    assert feed.last_error.startswith(f"Refused to fetch {feed.feed_url}: ")
    assert REFUSED in feed.last_error
    assert server.seen == []  # not a single request reached the server
    assert BlogEntry.objects.count() == 0


@pytest.mark.parametrize(("host", "reason"), OTHER_NON_PUBLIC.values(), ids=OTHER_NON_PUBLIC.keys())
def test_private_link_local_and_reserved_addresses_are_refused(public_only, host, reason):
    feed = make_feed(f"http://{host}/latest/meta-data/")
    assert refresh_all()["feeds_failed"] == 1
    feed.refresh_from_db()
    assert REFUSED in feed.last_error and reason in feed.last_error, feed.last_error


def test_the_error_names_the_host_its_address_and_the_setting(server, public_only):
    feed = make_feed(server.url("/feed.xml", host="2130706433"))
    refresh_all()
    feed.refresh_from_db()
    assert f"2130706433 (127.0.0.1) is a loopback address, {REFUSED} (FEEDS_ALLOW_PRIVATE_NETWORKS)." in (
        feed.last_error
    )


@pytest.fixture
def secret_server(server, settings):
    """A server on 127.0.0.2, on the test server's own port, that nothing may reach; only 127.0.0.1 is allowed."""
    settings.FEEDS = {**settings.FEEDS, "ALLOW_PRIVATE_NETWORKS": ["127.0.0.1/32"]}
    with serving("127.0.0.2", server.server_port) as secret:
        secret.feed("/secret.xml", rss(item(1, title="Internal document")))
        yield secret


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_to_an_internal_address_is_refused_and_never_stored(server, secret_server, status):
    target = secret_server.url("/secret.xml")
    url = server.route("/redirect", lambda r: respond(r, status, headers={"Location": target}))
    feed = make_feed(url)

    assert refresh_all()["feeds_failed"] == 1

    feed.refresh_from_db()
    assert feed.last_error.startswith(f"Refused to fetch the redirect from {url} to {target}: 127.0.0.2 is a loopback")
    assert feed.feed_url == url  # a 301 to an internal address does not move the feed there
    assert secret_server.seen == [] and BlogEntry.objects.count() == 0
    assert len(server.requests_to("/redirect")) == 1


def test_names_are_resolved_and_every_answer_checked(server, public_only):
    answers = {"internal.example": ["10.1.2.3"], "mixed.example": ["93.184.216.34", "127.0.0.1"]}

    async def resolve(host, port):
        return answers[host]

    internal = make_feed("http://internal.example/feed.xml", name="internal")
    mixed = make_feed(server.url("/feed.xml", host="mixed.example"), name="mixed")
    with addresses.use_resolver(resolve):
        assert refresh_all()["feeds_failed"] == 2

    internal.refresh_from_db()
    mixed.refresh_from_db()
    assert "internal.example resolves to 10.1.2.3, which is a private address" in internal.last_error
    # One bad answer is enough: a name must not be able to steer some connections inward.
    assert "mixed.example resolves to 127.0.0.1, which is a loopback address" in mixed.last_error
    assert server.seen == []


def test_the_connection_goes_to_the_address_that_was_checked(server, secret_server):
    """DNS rebinding: the name answers 127.0.0.1 (allowed) once, then 127.0.0.2 (the secret server).

    The fetch resolves once, checks that answer and connects to it, keeping the name in the
    Host header; the second answer is only ever seen by the check of the next connection.
    """
    calls = []

    async def rebinding(host, port):
        calls.append(host)
        return ["127.0.0.1"] if len(calls) == 1 else ["127.0.0.2"]

    server.feed("/feed.xml", DOC)
    feed = make_feed(server.url("/feed.xml", host="rebind.example"))
    with addresses.use_resolver(rebinding):
        assert refresh_all()["entries_created"] == 2
        assert calls == ["rebind.example"]
        (request,) = server.requests_to("/feed.xml")
        assert request.headers["host"] == f"rebind.example:{server.server_port}"

        assert refresh_all()["feeds_failed"] == 1  # a new connection: resolved again, checked again

    assert calls == ["rebind.example", "rebind.example"]
    feed.refresh_from_db()
    assert "rebind.example resolves to 127.0.0.2, which is a loopback address" in feed.last_error
    assert secret_server.seen == []


def test_an_allowed_network_lets_through_only_its_addresses(server, secret_server):
    server.feed("/feed.xml", DOC)
    allowed = make_feed(server.url("/feed.xml"), name="allowed")
    refused = make_feed(secret_server.url("/secret.xml"), name="refused")

    assert refresh_all()["feeds_failed"] == 1

    assert BlogEntry.objects.filter(feed=allowed).count() == 2
    refused.refresh_from_db()
    assert "127.0.0.2 is a loopback address" in refused.last_error
    assert secret_server.seen == []


# --- the admin form ---------------------------------------------------------------------------


def add_feed(admin_client, url):
    return admin_client.post(
        reverse("admin:blogs_feed_add"), {"name": "Feed", "feed_url": url, "website_url": "", "is_active": "on"}
    )


NOT_PUBLIC = "is {}, not a public internet address. Feeds are fetched only from public addresses"
INVALID = "Enter a valid URL."  # URLField's own validator: a host name needs a top-level domain


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("http://169.254.169.254/latest/meta-data/", NOT_PUBLIC.format("a link-local address")),
        ("http://127.0.0.1:8000/feed.xml", NOT_PUBLIC.format("a loopback address")),
        ("http://[::1]/feed.xml", NOT_PUBLIC.format("a loopback address")),
        ("http://[::ffff:10.0.0.1]/feed.xml", NOT_PUBLIC.format("a private address in IPv4-mapped form")),
        ("http://10.0.0.1/feed.xml", NOT_PUBLIC.format("a private address")),
        ("http://0.0.0.0/feed.xml", NOT_PUBLIC.format("the unspecified address")),
        ("http://localhost/feed.xml", "localhost is a loopback name, not a public internet address"),
        ("http://2130706433/feed.xml", INVALID),
        ("http://0x7f.1/feed.xml", INVALID),
    ],
)
def test_the_admin_form_refuses_literal_non_public_addresses(admin_client, public_only, url, error):
    response = add_feed(admin_client, url)

    assert response.status_code == 200  # the form again, with its error
    (shown,) = response.context["adminform"].form.errors["feed_url"]
    assert error in shown
    if error != INVALID:
        assert shown.endswith("(FEEDS_ALLOW_PRIVATE_NETWORKS). Use the feed's public address.")
    assert not Feed.objects.exists()


def test_the_admin_form_accepts_a_public_url_without_resolving_it(admin_client, public_only):
    response = add_feed(admin_client, "https://blog.python.org/feeds/posts/default")
    assert response.status_code == 302
    assert Feed.objects.get().feed_url == "https://blog.python.org/feeds/posts/default"


# --- the setting --------------------------------------------------------------------------------


def test_a_system_check_warns_when_private_networks_are_allowed_in_production(settings):
    settings.DEBUG = False
    settings.FEEDS = {**settings.FEEDS, "ALLOW_PRIVATE_NETWORKS": True}
    (warning,) = check_feed_settings(None)
    assert isinstance(warning, Warning) and warning.id == "blogs.W001"
    assert "0.0.0.0/0" in warning.msg

    settings.DEBUG = True
    assert check_feed_settings(None) == []
    settings.DEBUG = False
    settings.FEEDS = {**settings.FEEDS, "ALLOW_PRIVATE_NETWORKS": False}
    assert check_feed_settings(None) == []


@pytest.mark.parametrize("value", ["yes", ["10.0.0.0/33"], ["intranet"]])
def test_a_bad_private_networks_setting_is_a_check_error_naming_it(settings, value):
    settings.FEEDS = {**settings.FEEDS, "ALLOW_PRIVATE_NETWORKS": value}
    (error,) = check_feed_settings(None)
    assert isinstance(error, Error) and error.id == "blogs.E001"
    assert error.msg.startswith(f"FEEDS_ALLOW_PRIVATE_NETWORKS={value!r} must be False (the default), True or a list")


def manage_check(**environ: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "pydotorg.settings", "DEBUG": "false", **environ}
    return subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


def test_the_environment_variable_takes_true_false_or_a_list_of_networks():
    listed = manage_check(FEEDS_ALLOW_PRIVATE_NETWORKS="10.1.2.0/24, 192.168.7.0/24")
    assert listed.returncode == 0
    assert "(blogs.W001) FEEDS_ALLOW_PRIVATE_NETWORKS is on with DEBUG off: feeds may be fetched from " in listed.stderr
    assert "10.1.2.0/24, 192.168.7.0/24, so whoever" in listed.stderr

    assert "blogs.W001" not in manage_check(FEEDS_ALLOW_PRIVATE_NETWORKS="false").stderr

    bad = manage_check(FEEDS_ALLOW_PRIVATE_NETWORKS="intranet")
    assert bad.returncode != 0
    assert "(blogs.E001) FEEDS_ALLOW_PRIVATE_NETWORKS=['intranet'] must be False" in bad.stderr
