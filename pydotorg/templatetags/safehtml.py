"""Template filters over pydotorg.safehtml, for HTML that did not come from our own templates.

{% load safehtml %}
{{ entry.content|sanitize }}      allow-listed HTML, marked safe
{% if entry.url|is_web_url %}     an absolute http(s) URL, safe to put in href
"""

from django import template
from django.utils.safestring import SafeString, mark_safe

from pydotorg import safehtml

register = template.Library()


@register.filter
def sanitize(value: object) -> SafeString:
    """Stored HTML is sanitised again on output: nothing stored renders unchecked."""
    return mark_safe(safehtml.sanitize(str(value or "")))


@register.filter
def is_web_url(value: object) -> bool:
    return safehtml.is_web_url(value) if isinstance(value, str) else False
