"""tasks_app's messages name its own settings, and the environment variable a project says feeds each
(``SAQ["SETTING_SOURCES"]``); tasks_app itself names no variable of this site."""

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.test import override_settings
from redis.exceptions import ConnectionError as RedisConnectionError

from tasks_app import checks as tasks_checks
from tasks_app import conf
from tasks_app.exceptions import reason

TASKS_APP = Path(conf.__file__).parent


def sources(mapping):
    return override_settings(SAQ={**settings.SAQ, "SETTING_SOURCES": mapping})


def test_a_setting_is_named_with_the_variable_that_feeds_it():
    with sources({"QUEUES.default.URL": "REDIS_URL", "DATABASES.default": "DATABASE_URL", "API_TOKEN": "TOKEN"}):
        assert conf.setting_name("QUEUES", "default", "URL") == (
            'SAQ["QUEUES"]["default"]["URL"] (set from the environment variable REDIS_URL)'
        )
        assert conf.setting_name("DATABASES", "default") == (
            'DATABASES["default"] (set from the environment variable DATABASE_URL)'
        )
        assert conf.setting_name("API_TOKEN") == 'SAQ["API_TOKEN"] (set from the environment variable TOKEN)'
        assert conf.setting_name("QUEUES", "emails", "URL") == 'SAQ["QUEUES"]["emails"]["URL"]'  # none said


def test_without_sources_the_setting_alone():
    with override_settings(SAQ={k: v for k, v in settings.SAQ.items() if k != "SETTING_SOURCES"}):
        assert conf.setting_name("QUEUES", "default", "URL") == 'SAQ["QUEUES"]["default"]["URL"]'
        assert conf.setting_name("DATABASES", "replica") == 'DATABASES["replica"]'


def test_a_queue_name_with_dots_is_one_key():
    with sources({"QUEUES.mail.bulk.URL": "BULK_REDIS_URL"}):
        assert conf.setting_name("QUEUES", "mail.bulk", "URL") == (
            'SAQ["QUEUES"]["mail.bulk"]["URL"] (set from the environment variable BULK_REDIS_URL)'
        )


def test_a_reason_reads_in_the_middle_of_a_sentence():
    refused = RedisConnectionError("Error 111 connecting to 127.0.0.1:1. Connection refused.")
    sentence = f"{reason(refused)}. Start Redis"
    assert sentence == "Error 111 connecting to 127.0.0.1:1. Connection refused. Start Redis"
    assert reason(TimeoutError()) == "TimeoutError"


def test_tasks_app_names_no_environment_variable_of_the_site():
    site_variables = re.compile(r"\b(REDIS_URL|DATABASE_URL|SAQ_API_TOKEN)\b")
    offenders = [
        f"{path.relative_to(TASKS_APP)}:{number}"
        for path in TASKS_APP.rglob("*")
        if path.suffix in (".py", ".html", ".txt")
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if site_variables.search(line) and "SETTING_SOURCES" not in line
    ]
    assert offenders == []


def test_the_site_says_which_variable_feeds_each_setting():
    # tests/settings.py keeps the site's sources and names the tests' own variables for the rest.
    assert settings.SAQ["SETTING_SOURCES"] == {
        "QUEUES.default.URL": "TEST_REDIS_URL",
        "DATABASES.default": "TEST_DATABASE_URL",
        "API_TOKEN": "SAQ_API_TOKEN",
    }
    assert tasks_checks.check_setting_sources() == []


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (["REDIS_URL"], 'SAQ["SETTING_SOURCES"] must be a dict, not list.'),
        ({"QUEUE.default.URL": "REDIS_URL"}, "SAQ[\"SETTING_SOURCES\"]['QUEUE.default.URL'] names no setting"),
        ({"QUEUES.nope.URL": "REDIS_URL"}, "SAQ[\"SETTING_SOURCES\"]['QUEUES.nope.URL'] names no configured queue"),
        ({"QUEUES.default.URL": "REDIS URL"}, "= 'REDIS URL' is not an environment variable's name."),
        ({"API_TOKEN": None}, "= None is not an environment variable's name."),
    ],
)
def test_a_malformed_source_is_a_check_error(value, message):
    with sources(value):
        (error,) = tasks_checks.check_setting_sources()
        assert error.id == "tasks_app.E030" and message in error.msg
        assert conf.setting_name("QUEUES", "default", "URL").startswith('SAQ["QUEUES"]["default"]["URL"]')
