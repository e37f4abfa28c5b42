"""One timestamp format in every command's output, in TIME_ZONE."""

from datetime import UTC, datetime

from django.test import override_settings

from tasks_app.display import show_time


def test_one_format_in_the_time_zone():
    moment = datetime(2026, 12, 5, 14, 3, 7, tzinfo=UTC)
    assert show_time(moment) == show_time(moment.timestamp()) == "2026-12-05 14:03:07 UTC"
    with override_settings(TIME_ZONE="Europe/Berlin"):
        assert show_time(moment) == "2026-12-05 15:03:07 CET"
