"""Validators the site's models share."""

from __future__ import annotations

from datetime import datetime

from django.core.exceptions import ValidationError

# Dates a page can show in any time zone: years near 1 and 9999 overflow when converted from UTC.
EARLIEST_YEAR, LATEST_YEAR = 1900, 9998


def displayable(value: datetime) -> bool:
    """Whether a page can show ``value`` in any time zone: its year is ``EARLIEST_YEAR``..``LATEST_YEAR``."""
    return EARLIEST_YEAR <= value.year <= LATEST_YEAR


def displayable_datetime(value: datetime) -> None:
    """Refuse a date and time outside ``EARLIEST_YEAR``..``LATEST_YEAR`` (``ValidationError``)."""
    if not displayable(value):
        raise ValidationError(
            "Enter a date between the years %(earliest)s and %(latest)s.",
            code="year_out_of_range",
            params={"earliest": EARLIEST_YEAR, "latest": LATEST_YEAR},
        )
