"""``manage.py check --deploy``: the problems that stop the site serving with DEBUG off (pydotorg/serving.py)."""

from __future__ import annotations

from django.core.checks import Error, Tags, register

from .serving import serving_problems


@register(Tags.security, deploy=True)
def check_serving(app_configs=None, **kwargs) -> list[Error]:
    return [Error(problem.message, id=problem.check_id) for problem in serving_problems()]
