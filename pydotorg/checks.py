"""``manage.py check --deploy``: the problems that stop the site serving with DEBUG off (pydotorg/serving.py)."""

from __future__ import annotations

from django.core.checks import Error, Tags, register

from .serving import SECRET_KEY_PROBLEM, serving_problems


@register(Tags.security, deploy=True)
def check_serving(app_configs=None, **kwargs) -> list[Error]:
    return [
        Error(problem, id="pydotorg.E001" if problem == SECRET_KEY_PROBLEM else "pydotorg.E002")
        for problem in serving_problems()
    ]
