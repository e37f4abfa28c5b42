"""The dashboard's monitoring endpoints: ``stats.json`` and Prometheus ``metrics``, for monitors that
send ``SAQ["API_TOKEN"]`` as a bearer token, or for staff with the view permission."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from django.utils.log import log_response
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client.exposition import choose_encoder

from .. import conf, redis_facts
from ..metrics import collector
from . import data
from .views import VIEW


def _bearer(request: HttpRequest) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _refusal(request: HttpRequest, endpoint: str) -> tuple[int, str] | None:
    """Why a monitoring request may not read (HTTP status, message), or None when it may.

    Allowed: the ``SAQ["API_TOKEN"]`` in ``Authorization: Bearer <token>`` (never in the URL, which
    proxies and servers log), compared in constant time; or a staff session with the view permission. No token
    set: the endpoint is disabled for everyone but such staff.
    """
    user = request.user
    if user.is_active and user.is_staff and user.has_perm(VIEW):
        return None
    expected = conf.raw().get("API_TOKEN") or ""
    given = _bearer(request)
    if not expected:
        setting = conf.setting_name("API_TOKEN")
        return 404, f"The {endpoint} endpoint is disabled: set {setting} to a long random string."
    if not given:
        return 401, "Send the token: Authorization: Bearer <API_TOKEN>."
    if not constant_time_compare(given, expected):
        return 403, "Invalid API token."
    return None


def token_in_url(request: HttpRequest, token: str) -> JsonResponse:
    """The URL form of the token, which older versions took: refused, and logged without the token."""
    response = JsonResponse(
        {"error": "Send the API token in the header Authorization: Bearer <token>, not in the URL."}, status=400
    )
    # Logged here, with the token cut out, so Django's own log line (the whole path) is not written.
    log_response("Refused an API token in the URL of %s", request.path.replace(token, "<token>"), response=response)
    return response


def _challenge(response: HttpResponse) -> HttpResponse:
    if response.status_code == 401:
        response["WWW-Authenticate"] = 'Bearer realm="task queues"'
    return response


@never_cache
@require_GET
def stats(request: HttpRequest) -> JsonResponse:
    """Queue counts and workers as JSON, for monitoring; authenticated as ``_refusal`` says."""
    refused = _refusal(request, "stats")
    if refused is not None:
        return _challenge(JsonResponse({"error": refused[1]}, status=refused[0]))
    try:
        queues = data.run(data.overview(list(conf.queues())))
    except data.REDIS_ERRORS as exc:
        return JsonResponse({"error": f"Redis did not answer in time ({exc or type(exc).__name__})."}, status=503)
    body = {
        "generated_at": timezone.now().isoformat(),
        "queues": [q.as_json() for q in queues],
        # Per queue: the primary reached (redacted host:port), through Sentinel or not, replicas (redis_facts).
        "connections": data.run(redis_facts.connection_facts(list(conf.queues()))),
        # null while any queue is unreachable: a partial list would read as the whole truth.
        "workers": None
        if any(q.workers is None for q in queues)
        else [worker.as_json() for q in queues for worker in q.workers],
    }
    # 503 when a queue is unreachable, so a monitor alerts on the status code alone.
    return JsonResponse(body, status=503 if any(q.error for q in queues) else 200)


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus metrics (``tasks_app.metrics.collector``), authenticated as ``stats`` is.

    200 even when a queue's Redis is down: ``tasks_app_queue_up`` says so, and the other series
    (the outbox backlog, other queues) are still scraped.
    """
    refused = _refusal(request, "metrics")
    if refused is not None:
        return _challenge(HttpResponse(refused[1] + "\n", status=refused[0], content_type="text/plain"))
    encode, content_type = choose_encoder(request.headers.get("Accept", ""))
    return HttpResponse(encode(collector.registry()), content_type=content_type)
