"""Queue URLs checked before any connection: a parameter redis-py would choke on, or a password whose
/ ? # @ were not percent-encoded, is refused in one line naming the setting, and never quoted."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from tasks_app.queue_urls import split_url_options
from tasks_app.redaction import redact_url

SETTING = "REDIS_URL"


@pytest.mark.parametrize(
    "url",
    [
        "unix:///srv/jenkins/job@2/var/redis/redis.sock?db=1",  # a checkout in a directory named job@2
        "redis://h:6379/0?lib_name=site&lib_version=1&encoding=utf-8&client_name=w1&protocol=3",
        "rediss://h:6380/0?ssl_cert_reqs=none&ssl_check_hostname=false&ssl_ca_data=PEM",
        "redis://h/0?foo=",  # a blank value: redis-py ignores it
        "redis://h/0?password=p@ss",  # a raw '@' in a query value is legal
        "redis://[::1]:6379/0?socket_timeout=5&health_check_interval=10",
    ],
)
def test_urls_redis_py_reads_are_accepted(url):
    assert split_url_options(url, SETTING)[0] == url


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("redis://h/0?concurency=5", "take no parameter 'concurency' (did you mean 'concurrency'?)"),
        ("redis://h/0?ssl_certfile=/c.pem", "take no parameter 'ssl_certfile' (TLS needs a rediss:// URL)"),
        ("redis://h/0?timeout=1", "'timeout' (a blocking pool's, not a client's)"),
        ("redis://h/0?retry_on_error=TimeoutError", "'retry_on_error' (redis-py reads it as a list of characters)"),
        ("rediss://h/0?ssl_min_version=TLSv1_2", "'ssl_min_version' (redis-py wants a TLSVersion there, not text)"),
        ("redis://h/0?decode_responses=true", "(tasks_app reads Redis's replies as bytes)"),
        ("redis://h/0?db=abc", "parameter db='abc' is not a value redis-py can read"),
        ("redis://127.0.0.1:6379/seven", "database 'seven' is not a number, and redis-py would use database 0"),
        ("rediss://h/1x", "database '1x' is not a number"),
    ],
)
def test_a_parameter_redis_py_would_choke_on_is_refused_naming_it(url, said):
    with pytest.raises(ImproperlyConfigured) as caught:
        split_url_options(url, SETTING)
    assert str(caught.value).startswith(f"{SETTING}: ") and said in str(caught.value)


@pytest.mark.parametrize(
    ("url", "secret"),
    [
        ("redis://:p@ss/w#rd@h:6379/0", "ss/w#rd"),  # read as host "ss", path "/w", fragment
        ("redis://:pa/ss@h:6379/0", "ss@h"),  # an '@' in the database number's place
        ("redis://:pa?ss@h/0", "ss@h"),  # a query parameter named "ss@h/0"
        ("redis://:1234?db=SECRET@h:6379/0", "SECRET"),  # fits the query's syntax: its value is not quoted
        ("redis://u:1234?frag&db=0@h:6379/0", "frag"),
    ],
)
def test_a_password_with_unencoded_separators_is_refused_without_quoting_it(url, secret):
    with pytest.raises(ImproperlyConfigured) as caught:
        split_url_options(url, SETTING)
    assert "percent-encode" in str(caught.value) and "%2F %3F %23 %40" in str(caught.value)
    assert secret not in str(caught.value)
    assert redact_url(url) == "***"  # where the password ends cannot be told


def test_an_at_sign_in_the_query_hides_the_whole_url_when_shown():
    # Legal (?password=p@ss), but a spilled password may fit the query's syntax too: shown, it is hidden whole.
    assert redact_url("redis://user:1234?password=SECRET@h:6379/0") == "***"
    assert redact_url("redis://h:6379/0?password=plain") == "redis://h:6379/0?password=***"
