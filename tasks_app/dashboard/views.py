"""The dashboard's views. Each is reached through the admin (staff only) and checks its permission.

Reads and actions go to Redis through ``data.run`` (tasks_app's background loop); a Redis that is
down becomes a message on the page. Actions are POSTs, CSRF-protected by ``admin_view``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.apps import apps
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.text import capfirst
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from saq.job import Job, Status

from .. import conf, redis_facts
from .. import operations as ops
from ..engine.clock import job_time
from ..exceptions import ActionRefused
from . import activity, cron, data, formatting
from .forms import BulkForm, EnqueueForm, JobFilterForm

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
        "time_zone": timezone.get_current_timezone_name(),
        "metrics": apps.is_installed("tasks_app.metrics"),
        **extra,
    }


def job_url(queue: str, key: str) -> str:
    return reverse("admin:tasks_app_dashboard_job", args=[queue, key])


def _job_row(job: Job) -> dict[str, Any]:
    return {
        "job": job,
        "queue": job.queue.name if job.queue else "",
        "status": ops.display_status(job),
        "url": job_url(job.queue.name, job.key) if job.queue else "",
        "queued": job_time(job.queued),
        "last_activity": job_time(data.last_activity(job)),
        "error_line": (job.error or "").strip().splitlines()[-1] if job.error else "",
    }


def _chain_links(job: Job) -> dict[str, list[tuple[str, str, str]]] | None:
    """A chain step's parents and children as ``(queue, key, url)``; None for a job of no chain."""
    links = job.meta.get("chain") if job.meta else None
    if not links:
        return None
    return {side: [(q, k, job_url(q, k)) for q, k in links.get(side, [])] for side in ("parents", "children")}


# --- pages ----------------------------------------------------------------------------------------


def index(request: HttpRequest, model_admin: ModelAdmin) -> HttpResponse:
    _require(request, VIEW)
    try:
        queues = data.run(data.overview(list(conf.queues()), recent_failures=10))
        cron_entries = data.run(cron.cron_rows())
        connections = data.run(redis_facts.connection_facts(list(conf.queues())))  # never raises: says why
        page_error = None
    except ops.REDIS_ERRORS as exc:  # the whole read timed out
        queues, cron_entries, connections = [], [], []
        page_error = f"Redis did not answer in time ({exc or type(exc).__name__})."
    failures = sorted((job for q in queues for job in q.recent), key=data.last_activity, reverse=True)[:10]
    context = _context(
        request,
        model_admin,
        "Task queues",
        queues=queues,
        charts=[(q.name, activity.svg(q.name, q.last_hour)) for q in queues if not q.error],
        workers=[worker for q in queues for worker in q.workers or ()],
        # With a queue unreachable, "no workers" and "no failures" would be guesses: say "unknown".
        unknown=bool(page_error) or any(q.error for q in queues),
        failures=[_job_row(job) for job in failures],
        page_error=page_error,
        scan_limit=data.SCAN_LIMIT,
        cron_entries=cron_entries,
        connections=connections,
        time_zone=settings.TIME_ZONE,
    )
    return render(request, "tasks_app/dashboard/index.html", context)


def jobs(request: HttpRequest, model_admin: ModelAdmin) -> HttpResponse:
    _require(request, VIEW)
    form = JobFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_valid() else {}
    names = [filters["queue"]] if filters.get("queue") else list(conf.queues())
    try:
        found = data.run(data.list_jobs(names, filters.get("status", ""), filters.get("task", "").strip()))
    except ops.REDIS_ERRORS as exc:
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


def job_detail(request: HttpRequest, model_admin: ModelAdmin, queue: str, key: str) -> HttpResponse:
    _require(request, VIEW)
    _queue_or_404(queue)
    context = _context(request, model_admin, f"Job {key}", queue=queue, key=key)
    try:
        job = data.run(data.find_job(queue, key))
    except ops.REDIS_ERRORS as exc:
        context["redis_error"] = redis_facts.describe(queue, exc)
        return render(request, "tasks_app/dashboard/job.html", context, status=503)
    if job is None:
        context["missing"] = True
        return render(request, "tasks_app/dashboard/job.html", context, status=404)
    context.update(
        row=_job_row(job),
        arguments=formatting.pretty(job.kwargs or {}),
        result=formatting.pretty(job.result) if job.status == Status.COMPLETE else None,
        meta=formatting.pretty(formatting.readable_times(job.meta)) if job.meta else None,
        timings=[
            ("Queued", formatting.when(job.queued)),
            ("Scheduled for", formatting.when(job.scheduled * 1000)),
            ("Started", formatting.when(job.started)),
            ("Last touched", formatting.when(job.touched)),
            ("Completed", formatting.when(job.completed)),
        ],
        durations=[
            ("Waited (s)", formatting.seconds(job.queued, job.started)),
            ("Ran (s)", formatting.seconds(job.started, job.completed)),
        ],
        chain=_chain_links(job),
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
            ops.retry_job(queue, key, by)
            messages.success(request, f"Job {key} is queued again on {queue!r} for one more attempt.")
        else:
            job = ops.abort_job(queue, key, by)
            if job.status == Status.ABORTED:
                messages.success(request, f"Job {key} is aborted.")
            else:
                interval = conf.timers().get("abort", 1)
                messages.success(request, f"Abort requested: job {key}'s worker cancels it within ~{interval:g} s.")
    except ActionRefused as exc:
        messages.error(request, str(exc))
    except ops.REDIS_ERRORS as exc:
        messages.error(request, f"Nothing changed: {redis_facts.describe(queue, exc)}")
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
            job, state = ops.submit(form.built.job, queue)
        except ops.REDIS_ERRORS as exc:
            form.add_error(None, f"Nothing was enqueued: {redis_facts.describe(queue, exc)}")
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


# --- bulk and queue actions -----------------------------------------------------------------------


@require_GET
def queue_page(request: HttpRequest, model_admin: ModelAdmin, queue: str) -> HttpResponse:
    """One queue's state, its bulk and queue actions (forms that lead to a confirmation), and its trail."""
    _require(request, VIEW, MANAGE)
    _queue_or_404(queue)
    return _queue_page(request, model_admin, queue, BulkForm())


def _queue_page(
    request: HttpRequest, model_admin: ModelAdmin, queue: str, form: BulkForm, status: int = 200
) -> HttpResponse:
    try:
        stats, trail, limiters = data.run(_state_and_trail(queue))
    except ops.REDIS_ERRORS as exc:
        stats, trail, limiters = data.QueueStats(name=queue, url="", error=redis_facts.describe(queue, exc)), [], []
    context = _context(
        request, model_admin, f"Queue {queue}", queue=queue, stats=stats, form=form, trail=trail, limiters=limiters
    )
    return render(request, "tasks_app/dashboard/queue.html", context, status=status)


async def _state_and_trail(queue: str) -> tuple[data.QueueStats, list[dict[str, Any]], list[Any]]:
    """The queue page's reads, in one trip to the background loop: no trail (nor limiters) where the state
    could not be read."""
    stats = await data.queue_stats(queue)
    if stats.error:
        return stats, [], []
    return stats, await ops.arecent_actions(queue), await ops.alimiters(queue)


def queue_url(queue: str) -> str:
    return reverse("admin:tasks_app_dashboard_queue", args=[queue])


@require_http_methods(["GET", "POST"])
def bulk_action(request: HttpRequest, model_admin: ModelAdmin, queue: str) -> HttpResponse:
    """GET: how many jobs the chosen action would touch, and a button to confirm. POST: do it, to the
    jobs that were picked when that page was shown and have not changed since."""
    _require(request, VIEW, MANAGE)
    _queue_or_404(queue)
    try:
        now = ops.now_ms(queue)  # Redis's clock: the one the jobs' times are on
    except ops.REDIS_ERRORS as exc:
        stopped = "The action stopped" if request.method == "POST" else "Nothing can be counted"
        again = "Nothing was changed; count again once Redis is back."
        messages.error(request, f"{stopped}: {redis_facts.describe(queue, exc)} {again}")
        return HttpResponseRedirect(queue_url(queue))
    form = BulkForm(request.POST if request.method == "POST" else request.GET, now_ms=now)
    if not form.is_valid():
        return _queue_page(request, model_admin, queue, form, status=400)
    by = request.user.get_username()
    if request.method == "POST":
        as_of = form.cleaned_data["as_of"]
        if as_of is None:
            return _queue_page(request, model_admin, queue, form, status=400)
        selection = form.selection(queue, as_of)
        try:
            done = ops.act(selection, by)
        except TimeoutError:
            messages.warning(
                request,
                f"The action is still running after {ops.ACT_TIMEOUT_S:.0f} s; the queue's trail below "
                "says what it did once it has finished.",
            )
            return HttpResponseRedirect(queue_url(queue))
        except ops.REDIS_ERRORS as exc:
            # Written 500 jobs to a round trip: some may have changed before Redis went away.
            messages.error(
                request,
                f"The action stopped: {redis_facts.describe(queue, exc)} Jobs it had changed already keep "
                "their change; count again once Redis is back to see what is left.",
            )
            return HttpResponseRedirect(queue_url(queue))
        message = f"{capfirst(done.what)} on queue {queue!r}."
        if done.skipped:
            message += f" {done.skipped} had changed since they were counted, and were left alone."
        messages.success(request, message)
        return HttpResponseRedirect(queue_url(queue))
    selection = form.selection(queue, now)
    try:
        found = ops.find(selection)
    except ops.REDIS_ERRORS as exc:
        messages.error(request, f"Nothing can be counted: {redis_facts.describe(queue, exc)}")
        return HttpResponseRedirect(queue_url(queue))
    # Left out: what was not given, and an unticked box. None and False by identity, since 0 == False.
    hidden = {
        name: value
        for name, value in form.cleaned_data.items()
        if value is not None and value is not False and value != ""
    }
    context = _context(
        request,
        model_admin,
        f"Confirm: {selection.action} on queue {queue}",
        queue=queue,
        selection=selection,
        found=found,
        can_confirm=bool(found.count),
        hidden={**hidden, "as_of": selection.as_of},
        action_url=reverse("admin:tasks_app_dashboard_bulk", args=[queue]),
    )
    return render(request, "tasks_app/dashboard/confirm.html", context)


@require_http_methods(["GET", "POST"])
def pause(request: HttpRequest, model_admin: ModelAdmin, queue: str) -> HttpResponse:
    return _pause_or_resume(request, model_admin, queue, ops.PAUSE)


@require_http_methods(["GET", "POST"])
def resume(request: HttpRequest, model_admin: ModelAdmin, queue: str) -> HttpResponse:
    return _pause_or_resume(request, model_admin, queue, ops.RESUME)


def _pause_or_resume(request: HttpRequest, model_admin: ModelAdmin, queue: str, action: str) -> HttpResponse:
    """GET: what pausing (or resuming) the queue would hold back (or let go), and a button. POST: do it."""
    _require(request, VIEW, MANAGE)
    _queue_or_404(queue)
    by = request.user.get_username()
    if request.method == "POST":
        try:
            if action == ops.PAUSE:
                already = ops.pause(queue, by)
                if already is None:
                    messages.success(request, f"Queue {queue!r} is paused: its workers take no new jobs.")
                else:
                    messages.warning(request, f"Queue {queue!r} was paused already, by {already.by}.")
            elif ops.resume(queue, by):
                messages.success(request, f"Queue {queue!r} is resumed: its workers take jobs again.")
            else:
                messages.warning(request, f"Queue {queue!r} was not paused.")
        except ops.REDIS_ERRORS as exc:
            messages.error(request, f"Nothing changed: {redis_facts.describe(queue, exc)}")
        return HttpResponseRedirect(queue_url(queue))
    try:
        depth = ops.depth(queue)
    except ops.REDIS_ERRORS as exc:
        messages.error(request, f"Nothing can be counted: {redis_facts.describe(queue, exc)}")
        return HttpResponseRedirect(queue_url(queue))
    paused = ops.Paused.of(depth.paused)
    context = _context(
        request,
        model_admin,
        f"Confirm: {action} queue {queue}",
        queue=queue,
        switch=action,
        depth=depth,
        paused=paused,
        # Pausing a paused queue, or resuming a running one, has nothing to confirm.
        can_confirm=(paused is None) == (action == ops.PAUSE),
        action_url=reverse(f"admin:tasks_app_dashboard_{action}", args=[queue]),
    )
    return render(request, "tasks_app/dashboard/confirm.html", context)
