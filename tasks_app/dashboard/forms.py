"""The dashboard's forms: job filters, and the enqueue form.

The enqueue form offers what ``manage.py enqueue`` offers (arguments as a JSON object, queue, key,
delay or time, timeout, retries) and validates it the same way, with ``build_job``.
"""

from __future__ import annotations

import json
import time
from typing import Any

from django import forms
from django.core.exceptions import ImproperlyConfigured

from .. import conf
from ..argument_types import MAX_DEPTH
from ..backends.runner import is_runner
from ..enqueueing.building import BuiltJob, build_job
from ..exceptions import TaskNotFound
from ..operations import DELETE, FINISHED, UNITS, Selection
from ..registry import registry
from .data import STATUSES


def queue_choices() -> list[tuple[str, str]]:
    return [(name, name) for name in conf.queues()]


class JobFilterForm(forms.Form):
    queue = forms.ChoiceField(required=False)
    status = forms.ChoiceField(required=False, choices=[("", "any status"), *((s, s) for s in STATUSES)])
    task = forms.CharField(required=False, max_length=200)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["queue"].choices = [("", "all queues"), *queue_choices()]


class EnqueueForm(forms.Form):
    task = forms.ChoiceField()
    arguments = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 6, "cols": 60, "placeholder": '{"feed_id": 1}'}),
        help_text="The task's keyword arguments, as a JSON object.",
    )
    queue = forms.ChoiceField(required=False, help_text="Leave empty for the task's own queue.")
    key = forms.CharField(
        required=False,
        max_length=255,
        help_text="Optional job key: while a job with this key is pending, nothing new is enqueued.",
    )
    delay = forms.FloatField(
        required=False, min_value=0, max_value=conf.MAX_SECONDS, help_text="Seconds to wait before running."
    )
    at = forms.DateTimeField(required=False, help_text="Or: when to run (in the site's time zone).")
    timeout = forms.IntegerField(required=False, min_value=0, help_text="Seconds; empty for the task's own.")
    retries = forms.IntegerField(
        required=False, min_value=0, help_text="Retries after the first attempt; empty for the task's own."
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The django.tasks runner is internal: those tasks are enqueued with Task.enqueue().
        tasks = [spec.name for spec in registry.all() if not is_runner(spec.name)]
        self.fields["task"].choices = [("", "---------"), *((name, name) for name in tasks)]
        self.fields["queue"].choices = [("", "the task's queue"), *queue_choices()]
        self.built: BuiltJob | None = None

    def clean_arguments(self) -> dict[str, Any]:
        raw = self.cleaned_data["arguments"].strip()
        if not raw:
            return {}
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(f'Arguments must be JSON, e.g. {{"feed_id": 1}}: {exc}.') from None
        except RecursionError:  # thousands of nested brackets: refused like any nesting past MAX_DEPTH
            raise forms.ValidationError(f"Arguments nest more than {MAX_DEPTH} levels deep.") from None
        if not isinstance(value, dict):
            raise forms.ValidationError('Arguments must be a JSON object of keyword arguments, e.g. {"feed_id": 1}.')
        return value

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("delay") is not None and data.get("at") is not None:
            self.add_error("at", "Give either a delay or a time to run at, not both.")
        if self.errors:
            return data
        options = {name: data[name] for name in ("timeout", "retries") if data[name] is not None}
        try:
            self.built = build_job(
                data["task"],
                data["arguments"],
                queue=data["queue"] or None,
                key=data["key"] or None,
                delay=data["delay"] or None,
                at=data["at"],
                **options,
            )
        except TaskNotFound as exc:
            self.add_error("task", str(exc))
        except TypeError as exc:  # TaskArgumentError too: the arguments do not fit the task
            self.add_error("arguments", str(exc))
        except ImproperlyConfigured as exc:
            self.add_error("queue", str(exc))
        return data


# --- bulk and queue actions -----------------------------------------------------------------------

# A confirmation page older than this is stale: the operator must look at the count again.
CONFIRMATION_MAX_AGE_S = 3600
# Clocks of two web servers may differ a little; a time further in the future is not a real page's.
CLOCK_SKEW_S = 60


class BulkForm(forms.Form):
    """The choices of a bulk action (retry, delete, empty), read from the actions page's GET and
    carried, with ``as_of``, through the confirmation page's POST."""

    action = forms.ChoiceField(choices=[(action, action) for action in Selection.VERBS])
    task = forms.CharField(required=False, max_length=200, help_text="Only this task's jobs; empty for all.")
    older_than = forms.IntegerField(required=False, min_value=0, max_value=100_000, initial=7)
    unit = forms.ChoiceField(required=False, choices=[(unit, unit) for unit in UNITS], initial="days")
    status = forms.ChoiceField(
        required=False,
        choices=[("", "every finished status"), *((status, status) for status in FINISHED)],
    )
    include_scheduled = forms.BooleanField(
        required=False, help_text="Also jobs scheduled for later, and retries waiting for their delay."
    )
    as_of = forms.IntegerField(required=False, widget=forms.HiddenInput, min_value=0)

    def __init__(self, *args: Any, now_ms: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # "Now" on Redis's clock (the jobs' clock), as the view read it; this host's only without one.
        self.now_ms = now_ms

    def clean_task(self) -> str:
        return self.cleaned_data["task"].strip()

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("action") == DELETE and data.get("older_than") is None:
            self.add_error("older_than", "Say how old a finished job must be to be deleted, e.g. 7 days.")
        return data

    def clean_as_of(self) -> int | None:
        value = self.cleaned_data["as_of"]
        if value is None:
            return None
        current = self.now_ms if self.now_ms is not None else time.time() * 1000
        if value > current + CLOCK_SKEW_S * 1000 or value < current - CONFIRMATION_MAX_AGE_S * 1000:
            raise forms.ValidationError("This confirmation is out of date: look at the count again, then confirm.")
        return value

    @property
    def chosen_unit(self) -> str:
        """The unit of "older than": the one sent, if it is one, else the initial (as the queue page shows it)."""
        return getattr(self, "cleaned_data", {}).get("unit") or self.fields["unit"].initial

    def selection(self, queue: str, as_of: int) -> Selection:
        data = self.cleaned_data
        return Selection(
            action=data["action"],
            queue=queue,
            as_of=as_of,
            task=data["task"],
            older_than_s=(data.get("older_than") or 0) * UNITS[self.chosen_unit],
            statuses=(data["status"],) if data.get("status") else FINISHED,
            include_scheduled=data.get("include_scheduled", False),
        )
