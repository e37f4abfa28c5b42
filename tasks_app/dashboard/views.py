"""The dashboard's views. Each is reached through the admin (staff only) and checks its permission.

Reads and actions go to Redis through ``data.run`` (tasks_app's background loop); a Redis that is
down becomes a message on the page. Actions are POSTs, CSRF-protected by ``admin_view``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST
from saq.job import Job, Status

from .. import conf
from ..engine.queue import job_time
from . import data
from .forms import EnqueueForm, JobFilterForm

if TYPE_CHECKING:
    from django.contrib.admin import ModelAdmin

VIEW = "tasks_app.view_dashboard"
MANAGE = "tasks_app.manage_jobs"


def _require(request: HttpRequest, *permissions: str) -> None:
    if not request.user.has_perms(permissions):
        raise PermissionDenied


def _queue_or_404(name: str) -> str:
    if name not in conf.queues():
        raise Http404(f"No queue {name!r}; configured queues are {sorted(conf.queues())}.")
    return name


def _context(request: HttpRequest, model_admin: ModelAdmin, title: str, **extra: Any) -> dict[str, Any]:
    return {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "title": title,
        "can_manage": request.user.has_perm(MANAGE),
        **extra,
    }


def job_url(queue: str, key: str) -> str:
    return reverse("admin:tasks_app_dashboard_job", args=[queue, key])


def _job_row(job: Job) -> dict[str, Any]:
    return {
        "job": job,
        "queue": job.queue.name if job.queue else "",
        "status": data.display_status(job),
        "url": job_url(job.queue.name, job.key) if job.queue else "",
        "queued": job_time(job.queued),
        "last_activity": job_time(data.last_activity(job)),
        "error_line": (job.error or "").strip().splitlines()[-1] if job.error else "",
    }


# --- pages ----------------------------------------------------------------------------------------


def index(request: HttpRequest, model_admin: ModelAdmin) -> HttpResponse:
    _require(request, VIEW)
    try:
        queues = data.run(data.overview(list(conf.queues()), recent_failures=10))
        page_error = None
    except data.REDIS_ERRORS as exc:  # the whole read timed out
        queues, page_error = [], f"Redis did not answer in time ({exc or type(exc).__name__})."
    failures = sorted((job for q in queues for job in q.recent), key=data.last_activity, reverse=True)[:10]
    context = _context(
        request,
        model_admin,
        "Task queues",
        queues=queues,
        workers=[worker for q in queues for worker in q.workers or ()],
        # With a queue unreachable, "no workers" and "no failures" would be guesses: say "unknown".
        unknown=bool(page_error) or any(q.error for q in queues),
        failures=[_job_row(job) for job in failures],
        page_error=page_error,
        scan_limit=data.SCAN_LIMIT,
    )
    return render(request, "tasks_app/dashboard/index.html", context)


def jobs(request: HttpRequest, model_admin: ModelAdmin) -> HttpResponse:
    _require(request, VIEW)
    form = JobFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_valid() else {}
    names = [filters["queue"]] if filters.get("queue") else list(conf.queues())
    try:
        found = data.run(data.list_jobs(names, filters.get("status", ""), filters.get("task", "").strip()))
    except data.REDIS_ERRORS as exc:
        found = data.JobList([], [f"Redis did not answer in time ({exc or type(exc).__name__})."], False)
    context = _context(
        request,
        model_admin,
        "Jobs",
        form=form,
        rows=[_job_row(job) for job in found.jobs],
        errors=found.errors,
        truncated=found.truncated,
        scan_limit=data.SCAN_LIMIT,
    )
    return render(request, "tasks_app/dashboard/jobs.html", context)


def _pretty(value: Any) -> str:
    try:
        return json.dumps(value, indent=2, sort_keys=True, default=repr)
    except (TypeError, ValueError):
        return repr(value)


def _seconds(start: int, end: int) -> float | None:
    return round((end - start) / 1000, 3) if start and end else None


def job_detail(request: HttpRequest, model_admin: ModelAdmin, queue: str, key: str) -> HttpResponse:
    _require(request, VIEW)
    _queue_or_404(queue)
    context = _context(request, model_admin, f"Job {key}", queue=queue, key=key)
    try:
        job = data.run(data.find_job(queue, key))
    except data.REDIS_ERRORS as exc:
        context["redis_error"] = data.unreachable(queue, exc)
        return render(request, "tasks_app/dashboard/job.html", context, status=503)
    if job is None:
        context["missing"] = True
        return render(request, "tasks_app/dashboard/job.html", context, status=404)
    context.update(
        row=_job_row(job),
        arguments=_pretty(job.kwargs or {}),
        result=_pretty(job.result) if job.status == Status.COMPLETE else None,
        meta=_pretty(job.meta) if job.meta else None,
        timings=[
            ("Queued", job_time(job.queued)),
            ("Scheduled for", job_time(job.scheduled * 1000) if job.scheduled else None),
            ("Started", job_time(job.started)),
            ("Last touched", job_time(job.touched)),
            ("Completed", job_time(job.completed)),
        ],
        durations=[
            ("Waited (s)", _seconds(job.queued, job.started)),
            ("Ran (s)", _seconds(job.started, job.completed)),
        ],
        can_retry=job.status in (Status.FAILED, Status.ABORTED),
        can_abort=job.status in (Status.NEW, Status.QUEUED, Status.ACTIVE),
    )
    return render(request, "tasks_app/dashboard/job.html", context)


# --- actions --------------------------------------------------------------------------------------


def _act(request: HttpRequest, action: str) -> HttpResponse:
    _require(request, VIEW, MANAGE)
    queue = _queue_or_404(request.POST.get("queue", ""))
    key = request.POST.get("key", "")
    if not key:
        raise Http404("No job key given.")
    by = request.user.get_username()
    try:
        if action == "retry":
            data.run(data.retry_job(queue, key, by))
            messages.success(request, f"Job {key} is queued again on {queue!r} for one more attempt.")
        else:
            job = data.run(data.abort_job(queue, key, by))
            if job.status == Status.ABORTED:
                messages.success(request, f"Job {key} is aborted.")
            else:
                interval = conf.timers().get("abort", 1)
                messages.success(request, f"Abort requested: job {key}'s worker cancels it within ~{interval:g} s.")
    except data.ActionRefused as exc:
        messages.error(request, str(exc))
    except data.REDIS_ERRORS as exc:
        messages.error(request, f"Nothing changed: {data.unreachable(queue, exc)}")
    return HttpResponseRedirect(job_url(queue, key))


@require_POST
def retry(request: HttpRequest, model_admin: ModelAdmin) -> HttpResponse:
    return _act(request, "retry")


@require_POST
def abort(request: HttpRequest, model_admin: ModelAdmin) -> HttpResponse:
    return _act(request, "abort")


def enqueue(request: HttpRequest, model_admin: ModelAdmin) -> HttpResponse:
    _require(request, VIEW, MANAGE)
    form = EnqueueForm(request.POST or None, initial={"task": request.GET.get("task", "")})
    if request.method == "POST" and form.is_valid():
        queue = form.built.queue
        try:
            job, state = data.run(data.enqueue(form.built.job, queue))
        except data.REDIS_ERRORS as exc:
            form.add_error(None, f"Nothing was enqueued: {data.unreachable(queue, exc)}")
        else:
            if state == "queued":
                messages.success(request, f"Enqueued {job.function} as job {job.key} on {queue!r}.")
            elif state == "deferred":
                messages.success(
                    request, f"Job {job.key} is being aborted; {job.function} runs under that key once it has ended."
                )
            else:
                messages.warning(request, f"Job {job.key} is already pending; nothing new was enqueued.")
            return HttpResponseRedirect(job_url(queue, job.key))
    context = _context(request, model_admin, "Enqueue a task", form=form)
    return render(request, "tasks_app/dashboard/enqueue.html", context)


# --- monitoring -----------------------------------------------------------------------------------


def _bearer(request: HttpRequest) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


@never_cache
@require_GET
def stats(request: HttpRequest, token: str = "") -> JsonResponse:
    """Queue counts and workers as JSON, for monitoring.

    Authenticated by ``SAQ["API_TOKEN"]`` (``Authorization: Bearer <token>``, or the token in the
    URL as with django-rq), or by a staff session with the view permission. No token set: disabled
    for everyone but such staff.
    """
    user = request.user
    if not (user.is_active and user.is_staff and user.has_perm(VIEW)):
        expected = conf.raw().get("API_TOKEN") or ""
        given = _bearer(request) or token
        if not expected:
            return JsonResponse(
                {"error": 'The stats endpoint is disabled: set SAQ["API_TOKEN"] to a long random string.'}, status=404
            )
        if not given:
            response = JsonResponse({"error": "Send the token: Authorization: Bearer <API_TOKEN>."}, status=401)
            response["WWW-Authenticate"] = 'Bearer realm="task queues"'
            return response
        if not constant_time_compare(given, expected):
            return JsonResponse({"error": "Invalid API token."}, status=403)
    try:
        queues = data.run(data.overview(list(conf.queues())))
    except data.REDIS_ERRORS as exc:
        return JsonResponse({"error": f"Redis did not answer in time ({exc or type(exc).__name__})."}, status=503)
    body = {
        "generated_at": timezone.now().isoformat(),
        "queues": [q.as_json() for q in queues],
        # null while any queue is unreachable: a partial list would read as the whole truth.
        "workers": None
        if any(q.workers is None for q in queues)
        else [worker.as_json() for q in queues for worker in q.workers],
    }
    # 503 when a queue is unreachable, so a monitor alerts on the status code alone.
    return JsonResponse(body, status=503 if any(q.error for q in queues) else 200)
