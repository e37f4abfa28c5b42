"""System checks for the feed settings."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, Warning, register
from django.core.exceptions import ImproperlyConfigured

from .conf import feed_settings, flat_settings


@register()
def check_feed_settings(app_configs, **kwargs) -> list:
    try:
        config = feed_settings()
    except ImproperlyConfigured as exc:
        return [Error(str(exc), id="blogs.E001")]
    found = []
    flat = flat_settings()
    if flat:
        found.append(
            Warning(
                f"{', '.join(flat)} in settings.py {'is' if len(flat) == 1 else 'are'} no longer read: the feed "
                "settings are one dict, FEEDS.",
                hint="Move each into FEEDS without its prefix, e.g. FEEDS = {'MAX_BYTES': 10485760}; the FEEDS_* "
                "environment variables fill it as before.",
                id="blogs.W002",
            )
        )
    if config.allowed_networks and not settings.DEBUG:
        found.append(
            Warning(
                "FEEDS_ALLOW_PRIVATE_NETWORKS is on with DEBUG off: feeds may be fetched from "
                f"{', '.join(map(str, config.allowed_networks))}, so whoever can add a feed can read the "
                "services there (SSRF).",
                hint="Set FEEDS_ALLOW_PRIVATE_NETWORKS=false in production, or list only the networks of "
                "feed servers you trust; it is meant for tests and local feeds.",
                id="blogs.W001",
            )
        )
    return found
