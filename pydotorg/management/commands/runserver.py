"""runserver, refusing (like Django does for an empty ALLOWED_HOSTS) to serve on an unsafe configuration.

It wraps the next runserver in INSTALLED_APPS: WhiteNoise's, which serves static files
the way production does, which in turn wraps django.contrib.staticfiles'.
"""

from django.core.management.base import CommandError
from whitenoise.runserver_nostatic.management.commands.runserver import Command as WhiteNoiseRunserver

from pydotorg.serving import explain, serving_problems


class Command(WhiteNoiseRunserver):
    def handle(self, *args, **options):
        problems = serving_problems()
        if problems:
            raise CommandError(explain(problems))
        return super().handle(*args, **options)

    def run(self, **options):
        # Django checks the port is digits only: 99999 reached bind() and its OverflowError a
        # traceback (and with DEBUG on, a reloader that hung). Worded as Django's own refusal.
        if not 1 <= int(self.port) <= 65535:
            raise CommandError(f"{self.port!r} is not a valid port number: use one from 1 to 65535.")
        return super().run(**options)
