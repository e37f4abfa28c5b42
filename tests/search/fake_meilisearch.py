"""A STAND-IN for Meilisearch, for tests and benchmarks. It is not Meilisearch.

It serves, over real HTTP on loopback, the part of Meilisearch's API that
meilisearch-python-sdk 8 calls for this site, so the real SDK can be exercised over
a real socket where no Meilisearch binary is available:

    GET  /health, /version
    GET  /indexes, /indexes/{uid}          POST /indexes          DELETE /indexes/{uid}
    GET|PATCH /indexes/{uid}/settings      GET  /indexes/{uid}/stats
    POST|PUT  /indexes/{uid}/documents     POST /indexes/{uid}/documents/delete-batch
    POST /indexes/{uid}/search             POST /swap-indexes
    GET  /tasks, /tasks/{uid}

What it keeps from Meilisearch, because our code depends on it:
- writes are asynchronous tasks (enqueued -> processing -> succeeded/failed), processed
  one at a time in order by a background thread; a task's failure is reported on the
  task (``error.code``), not on the HTTP response, and a failed document batch adds nothing;
- document ids must be integers or strings of ``[a-zA-Z0-9_-]`` (``invalid_document_id``);
- filtering and sorting only on attributes made filterable/sortable in the settings
  (``invalid_search_filter`` / ``invalid_search_sort``), so forgetting settings fails here too;
- adding documents or settings to a missing index creates it; swapping needs both indexes;
- errors are JSON ``{"message", "code", "type", "link"}`` with Meilisearch's status codes;
- ``_formatted`` with highlight tags and cropping, ``estimatedTotalHits``.

What it simplifies: every query term must match a word (the last one as a prefix), no
typo tolerance, stop words or synonyms; ranking is a weighted count of matches by
searchable-attribute order; filters are ``attr OP value`` joined by ``AND`` (and arrays).

The same tests run against a real Meilisearch when MEILISEARCH_URL is set.

Run alone: ``python tests/search/fake_meilisearch.py --port 7700``.
"""

from __future__ import annotations

import argparse
import json
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

DOC_ID = re.compile(r"^[a-zA-Z0-9_-]{1,511}$")
WORD = re.compile(r"\w+", re.UNICODE)
CONDITION = re.compile(r"^\s*([\w.]+)\s*(!=|>=|<=|=|>|<)\s*(\"(?:[^\"\\]|\\.)*\"|'[^']*'|[^\s]+)\s*$")


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, type_: str = "invalid_request") -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.type = status, code, message, type_

    def body(self) -> dict[str, str]:
        return {
            "message": self.message,
            "code": self.code,
            "type": self.type,
            "link": f"https://docs.meilisearch.com/errors#{self.code}",
        }


class TaskFailed(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


@dataclass
class Index:
    uid: str
    primary_key: str | None
    created_at: str = field(default_factory=now)
    updated_at: str = field(default_factory=now)
    settings: dict[str, Any] = field(default_factory=dict)
    documents: dict[str, dict[str, Any]] = field(default_factory=dict)

    def info(self) -> dict[str, Any]:
        return {
            "uid": self.uid,
            "primaryKey": self.primary_key,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
        }

    def full_settings(self) -> dict[str, Any]:
        return {
            "searchableAttributes": ["*"],
            "filterableAttributes": [],
            "sortableAttributes": [],
            "displayedAttributes": ["*"],
            "rankingRules": ["words", "typo", "proximity", "attribute", "sort", "exactness"],
            "stopWords": [],
            "synonyms": {},
            "distinctAttribute": None,
            **self.settings,
        }


class Store:
    """Indexes, tasks, and the single thread that processes tasks in order."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.indexes: dict[str, Index] = {}
        self.tasks: list[dict[str, Any]] = []
        self.queue: deque[tuple[dict[str, Any], Any]] = deque()
        self.wakeup = threading.Condition(self.lock)
        self.stopping = False
        self.thread = threading.Thread(target=self._process, name="fake-meilisearch-tasks", daemon=True)
        self.thread.start()

    # --- tasks ------------------------------------------------------------------

    def enqueue(self, type_: str, index_uid: str | None, work, details: dict | None = None) -> dict[str, Any]:
        with self.lock:
            task = {
                "uid": len(self.tasks),
                "batchUid": None,
                "indexUid": index_uid,
                "status": "enqueued",
                "type": type_,
                "canceledBy": None,
                "details": details or {},
                "error": None,
                "duration": None,
                "enqueuedAt": now(),
                "startedAt": None,
                "finishedAt": None,
            }
            self.tasks.append(task)
            self.queue.append((task, work))
            self.wakeup.notify()
        return {k: task[k] for k in ("indexUid", "status", "type", "enqueuedAt")} | {"taskUid": task["uid"]}

    def _process(self) -> None:
        while True:
            with self.lock:
                while not self.queue and not self.stopping:
                    self.wakeup.wait()
                if self.stopping:
                    return
                task, work = self.queue.popleft()
                task["status"], task["startedAt"] = "processing", now()
                started = time.monotonic()
                try:
                    work()
                except TaskFailed as exc:
                    task["status"] = "failed"
                    task["error"] = ApiError(400, exc.code, exc.message).body()
                else:
                    task["status"] = "succeeded"
                task["duration"] = f"PT{time.monotonic() - started:.6f}S"
                task["finishedAt"] = now()

    def stop(self) -> None:
        with self.lock:
            self.stopping = True
            self.wakeup.notify()

    def task(self, uid: int) -> dict[str, Any]:
        with self.lock:
            if not 0 <= uid < len(self.tasks):
                raise ApiError(404, "task_not_found", f"Task `{uid}` not found.")
            return dict(self.tasks[uid])

    # --- indexes ----------------------------------------------------------------

    def index(self, uid: str) -> Index:
        try:
            return self.indexes[uid]
        except KeyError:
            raise ApiError(404, "index_not_found", f"Index `{uid}` not found.") from None

    def index_or_fail(self, uid: str) -> Index:
        if uid not in self.indexes:
            raise TaskFailed("index_not_found", f"Index `{uid}` not found.")
        return self.indexes[uid]

    def ensure(self, uid: str, primary_key: str | None = None) -> Index:
        if uid not in self.indexes:
            self.indexes[uid] = Index(uid, primary_key)
        return self.indexes[uid]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FakeMeilisearchServer

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    # --- plumbing ---------------------------------------------------------------

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise ApiError(400, "malformed_payload", f"The json payload provided is malformed. {exc}.") from None

    def _send(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _dispatch(self, method: str) -> None:
        parts = urlsplit(self.path)
        path, query = unquote(parts.path).rstrip("/") or "/", parse_qs(parts.query)
        try:
            self._authorize()
            body = self._body() if method in ("POST", "PUT", "PATCH", "DELETE") else None
            for verb, pattern, handler in ROUTES:
                match = pattern.fullmatch(path)
                if verb == method and match:
                    status, payload = handler(self.server.store, body, query, *match.groups())
                    return self._send(status, payload)
            raise ApiError(404, "not_found", f"{method} {path} is not served by this stand-in.")
        except ApiError as exc:
            self._send(exc.status, exc.body())

    def _authorize(self) -> None:
        key = self.server.api_key
        if key is None:
            return
        given = self.headers.get("Authorization", "")
        if not given:
            raise ApiError(401, "missing_authorization_header", "The Authorization header is missing.", "auth")
        if given != f"Bearer {key}":
            raise ApiError(403, "invalid_api_key", "The provided API key is invalid.", "auth")

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")


# --- endpoints ------------------------------------------------------------------

ACCEPTED = HTTPStatus.ACCEPTED


def health(store: Store, body, query) -> tuple[int, Any]:
    return 200, {"status": "available"}


def version(store: Store, body, query) -> tuple[int, Any]:
    return 200, {"pkgVersion": "stand-in", "commitSha": "", "commitDate": ""}


def list_indexes(store: Store, body, query) -> tuple[int, Any]:
    offset, limit = int(query.get("offset", ["0"])[0]), int(query.get("limit", ["20"])[0])
    with store.lock:
        infos = [index.info() for index in store.indexes.values()]
    return 200, {"results": infos[offset : offset + limit], "offset": offset, "limit": limit, "total": len(infos)}


def create_index(store: Store, body, query) -> tuple[int, Any]:
    if not isinstance(body, dict) or not isinstance(body.get("uid"), str):
        raise ApiError(400, "missing_index_uid", "Missing field `uid`.")
    uid, primary_key = body["uid"], body.get("primaryKey")
    if not DOC_ID.match(uid):
        raise ApiError(400, "invalid_index_uid", f"`{uid}` is not a valid index uid.")

    def work() -> None:
        if uid in store.indexes:
            raise TaskFailed("index_already_exists", f"Index `{uid}` already exists.")
        store.indexes[uid] = Index(uid, primary_key)

    return ACCEPTED, store.enqueue("indexCreation", uid, work, {"primaryKey": primary_key})


def get_index(store: Store, body, query, uid: str) -> tuple[int, Any]:
    with store.lock:
        return 200, store.index(uid).info()


def delete_index(store: Store, body, query, uid: str) -> tuple[int, Any]:
    def work() -> None:
        store.index_or_fail(uid)
        del store.indexes[uid]

    return ACCEPTED, store.enqueue("indexDeletion", uid, work)


def get_settings(store: Store, body, query, uid: str) -> tuple[int, Any]:
    with store.lock:
        return 200, store.index(uid).full_settings()


def update_settings(store: Store, body, query, uid: str) -> tuple[int, Any]:
    if not isinstance(body, dict):
        raise ApiError(400, "bad_request", "Settings must be a JSON object.")

    def work() -> None:
        index = store.ensure(uid)
        index.settings.update(body)
        index.updated_at = now()

    return ACCEPTED, store.enqueue("settingsUpdate", uid, work, body)


def stats(store: Store, body, query, uid: str) -> tuple[int, Any]:
    with store.lock:
        index = store.index(uid)
        distribution: dict[str, int] = {}
        for doc in index.documents.values():
            for key in doc:
                distribution[key] = distribution.get(key, 0) + 1
        busy = any(t["indexUid"] == uid for t, _ in store.queue)
        return 200, {"numberOfDocuments": len(index.documents), "isIndexing": busy, "fieldDistribution": distribution}


def _documents(store: Store, body, query, uid: str, merge: bool) -> tuple[int, Any]:
    if not isinstance(body, list) or not all(isinstance(doc, dict) for doc in body):
        raise ApiError(400, "malformed_payload", "The payload must be a JSON array of objects.")
    requested_key = query.get("primaryKey", [None])[0]

    def work() -> None:
        index = store.ensure(uid, requested_key)
        if index.primary_key is None:
            candidates = [k for k in (body[0] if body else {}) if k.lower().endswith("id")]
            index.primary_key = requested_key or (candidates[0] if len(candidates) == 1 else None)
            if index.primary_key is None:
                raise TaskFailed("index_primary_key_no_candidate_found", "The primary key inference failed.")
        key = index.primary_key
        staged = {}
        for doc in body:  # validate the whole batch first: a failed batch adds nothing
            if key not in doc:
                raise TaskFailed("missing_document_id", f"Document doesn't have a `{key}` attribute: `{doc}`.")
            value = doc[key]
            if isinstance(value, bool) or not (
                isinstance(value, int) or (isinstance(value, str) and DOC_ID.match(value))
            ):
                raise TaskFailed(
                    "invalid_document_id",
                    f"Document identifier `{json.dumps(value)}` is invalid. A document identifier can be of type "
                    "integer or string, only composed of alphanumeric characters (a-z A-Z 0-9), hyphens (-) "
                    "and underscores (_), and can not be more than 511 bytes.",
                )
            staged[str(value)] = doc
        for doc_id, doc in staged.items():
            index.documents[doc_id] = {**index.documents.get(doc_id, {}), **doc} if merge else doc
        index.updated_at = now()

    details = {"receivedDocuments": len(body), "indexedDocuments": None}
    return ACCEPTED, store.enqueue("documentAdditionOrUpdate", uid, work, details)


def add_documents(store: Store, body, query, uid: str) -> tuple[int, Any]:
    return _documents(store, body, query, uid, merge=False)


def update_documents(store: Store, body, query, uid: str) -> tuple[int, Any]:
    return _documents(store, body, query, uid, merge=True)


def delete_documents(store: Store, body, query, uid: str) -> tuple[int, Any]:
    if not isinstance(body, list):
        raise ApiError(400, "bad_request", "The payload must be a JSON array of document ids.")

    def work() -> None:
        index = store.index_or_fail(uid)
        for doc_id in body:
            index.documents.pop(str(doc_id), None)

    return ACCEPTED, store.enqueue("documentDeletion", uid, work, {"providedIds": len(body)})


def swap_indexes(store: Store, body, query) -> tuple[int, Any]:
    if not isinstance(body, list) or not all(isinstance(s, dict) and len(s.get("indexes", [])) == 2 for s in body):
        raise ApiError(400, "invalid_swap_indexes", "Each swap must name exactly two indexes.")
    pairs = [tuple(s["indexes"]) for s in body]

    def work() -> None:
        for a, b in pairs:  # all or nothing: check every pair before swapping any
            store.index_or_fail(a)
            store.index_or_fail(b)
        for a, b in pairs:
            first, second = store.indexes[a], store.indexes[b]
            first.uid, second.uid = b, a
            store.indexes[a], store.indexes[b] = second, first

    return ACCEPTED, store.enqueue("indexSwap", None, work, {"swaps": body})


def get_task(store: Store, body, query, uid: str) -> tuple[int, Any]:
    return 200, store.task(int(uid))


def list_tasks(store: Store, body, query) -> tuple[int, Any]:
    limit = int(query.get("limit", ["20"])[0])
    with store.lock:
        results = [dict(t) for t in reversed(store.tasks)][:limit]
        total = len(store.tasks)
    return 200, {
        "results": results,
        "total": total,
        "limit": limit,
        "from": results[0]["uid"] if results else None,
        "next": None,
    }


# --- search ---------------------------------------------------------------------


def _conditions(expression: Any, filterable: list[str]) -> list[tuple[str, str, Any]] | list[list]:
    """Parse a filter into a list of AND-ed terms; a term is a condition or a list of OR-ed conditions."""
    if expression is None:
        return []
    if isinstance(expression, str):
        expression = [part for part in re.split(r"\s+AND\s+", expression) if part.strip()]
    parsed: list = []
    for item in expression:
        if isinstance(item, list):
            parsed.append([_condition(sub, filterable) for sub in item])
        else:
            parsed.append(_condition(item, filterable))
    return parsed


def _condition(text: str, filterable: list[str]) -> tuple[str, str, Any]:
    match = CONDITION.match(text)
    if not match:
        raise ApiError(400, "invalid_search_filter", f"Was expecting an operation like `attr = value`, got `{text}`.")
    attribute, op, raw = match.groups()
    if attribute not in filterable:
        raise ApiError(
            400,
            "invalid_search_filter",
            f"Attribute `{attribute}` is not filterable. Available filterable attributes are: "
            f"`{', '.join(sorted(filterable))}`.",
        )
    if raw[0] in "\"'":
        value: Any = raw[1:-1].replace('\\"', '"')
    else:
        try:
            value = float(raw)
        except ValueError:
            value = raw
    return attribute, op, value


def _holds(doc: dict[str, Any], condition: tuple[str, str, Any]) -> bool:
    attribute, op, value = condition
    actual = doc.get(attribute)
    if actual is None:
        return op == "!="
    if isinstance(value, float):
        try:
            actual = float(actual)
        except (TypeError, ValueError):
            return op == "!="
    else:
        actual = str(actual).lower()
        value = str(value).lower()
    return {
        "=": actual == value,
        "!=": actual != value,
        ">": actual > value,
        ">=": actual >= value,
        "<": actual < value,
        "<=": actual <= value,
    }[op]


def _matches(doc: dict[str, Any], filters: list) -> bool:
    for term in filters:
        if isinstance(term, list):
            if not any(_holds(doc, c) for c in term):
                return False
        elif not _holds(doc, term):
            return False
    return True


def _words(value: Any) -> list[str]:
    if isinstance(value, list):
        return [w for item in value for w in _words(item)]
    return [w.lower() for w in WORD.findall(str(value))] if value is not None else []


def _term_hit(word: str, term: str, prefix: bool) -> bool:
    return word == term or (prefix and word.startswith(term))


def _score(doc: dict[str, Any], terms: list[str], attributes: list[str]) -> float | None:
    score = 0.0
    for position, term in enumerate(terms):
        prefix = position == len(terms) - 1
        best = None
        for rank, attribute in enumerate(attributes):
            hits = sum(_term_hit(w, term, prefix) for w in _words(doc.get(attribute)))
            if hits:
                weight = (len(attributes) - rank) * 10 + min(hits, 5)
                best = max(best or 0, weight)
        if best is None:
            return None
        score += best
    return score


def _highlight(text: str, terms: list[str], pre: str, post: str) -> str:
    def mark(match: re.Match) -> str:
        word = match.group(0)
        lowered = word.lower()
        for position, term in enumerate(terms):
            if lowered == term:
                return f"{pre}{word}{post}"
            if position == len(terms) - 1 and lowered.startswith(term):
                return f"{pre}{word[: len(term)]}{post}{word[len(term) :]}"
        return word

    return WORD.sub(mark, text)


def _crop(text: str, terms: list[str], length: int, marker: str) -> str:
    words = text.split()
    if len(words) <= length:
        return text
    first = next((i for i, w in enumerate(words) if any(_term_hit(x, t, True) for x in _words(w) for t in terms)), 0)
    start = max(0, min(first - length // 3, len(words) - length))
    cropped = " ".join(words[start : start + length])
    return (marker if start > 0 else "") + cropped + (marker if start + length < len(words) else "")


def search(store: Store, body, query, uid: str) -> tuple[int, Any]:
    started = time.monotonic()
    body = body or {}
    with store.lock:
        index = store.index(uid)
        settings = index.full_settings()
        documents = list(index.documents.values())
    filters = _conditions(body.get("filter"), settings["filterableAttributes"])
    sort = body.get("sort") or []
    for rule in sort:
        attribute = rule.split(":")[0]
        if attribute not in settings["sortableAttributes"]:
            raise ApiError(
                400,
                "invalid_search_sort",
                f"Attribute `{attribute}` is not sortable. Available sortable attributes are: "
                f"`{', '.join(settings['sortableAttributes'])}`.",
            )
    searchable = settings["searchableAttributes"]
    terms = _words(body.get("q") or "")
    scored = []
    for order, doc in enumerate(documents):
        if not _matches(doc, filters):
            continue
        attributes = list(doc) if searchable == ["*"] else searchable
        score = _score(doc, terms, attributes) if terms else 0.0
        if score is not None:
            scored.append((score, order, doc))
    scored.sort(key=lambda item: (-item[0], item[1]))
    for rule in reversed(sort):
        attribute, _, direction = rule.partition(":")
        scored.sort(
            key=lambda item: (item[2].get(attribute) is None, item[2].get(attribute) or 0), reverse=direction == "desc"
        )
    offset, limit = int(body.get("offset") or 0), int(body.get("limit") if body.get("limit") is not None else 20)
    retrieve = body.get("attributesToRetrieve") or ["*"]
    highlight = body.get("attributesToHighlight") or []
    crop = body.get("attributesToCrop") or []
    pre, post = body.get("highlightPreTag", "<em>"), body.get("highlightPostTag", "</em>")
    crop_length, marker = int(body.get("cropLength") or 10), body.get("cropMarker", "…")
    hits = []
    for _, _, doc in scored[offset : offset + limit]:
        hit = dict(doc) if retrieve == ["*"] else {k: doc[k] for k in retrieve if k in doc}
        if highlight or crop:
            formatted = {}
            for key, value in hit.items():
                text = value
                if isinstance(value, str) and (key in crop or "*" in crop):
                    text = _crop(value, terms, crop_length, marker)
                if isinstance(text, str) and (key in highlight or "*" in highlight) and terms:
                    text = _highlight(text, terms, pre, post)
                formatted[key] = text if isinstance(text, str) else value
            hit["_formatted"] = formatted
        hits.append(hit)
    return 200, {
        "hits": hits,
        "query": body.get("q") or "",
        "processingTimeMs": int((time.monotonic() - started) * 1000),
        "limit": limit,
        "offset": offset,
        "estimatedTotalHits": len(scored),
    }


UID = r"([^/]+)"
ROUTES = [
    ("GET", re.compile(r"/health"), health),
    ("GET", re.compile(r"/version"), version),
    ("GET", re.compile(r"/indexes"), list_indexes),
    ("POST", re.compile(r"/indexes"), create_index),
    ("GET", re.compile(rf"/indexes/{UID}"), get_index),
    ("DELETE", re.compile(rf"/indexes/{UID}"), delete_index),
    ("GET", re.compile(rf"/indexes/{UID}/settings"), get_settings),
    ("PATCH", re.compile(rf"/indexes/{UID}/settings"), update_settings),
    ("GET", re.compile(rf"/indexes/{UID}/stats"), stats),
    ("POST", re.compile(rf"/indexes/{UID}/documents"), add_documents),
    ("PUT", re.compile(rf"/indexes/{UID}/documents"), update_documents),
    ("POST", re.compile(rf"/indexes/{UID}/documents/delete-batch"), delete_documents),
    ("POST", re.compile(rf"/indexes/{UID}/search"), search),
    ("POST", re.compile(r"/swap-indexes"), swap_indexes),
    ("GET", re.compile(r"/tasks"), list_tasks),
    ("GET", re.compile(r"/tasks/(\d+)"), get_task),
]


class FakeMeilisearchServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, host: str = "127.0.0.1", port: int = 0, api_key: str | None = None) -> None:
        super().__init__((host, port), Handler)
        self.api_key = api_key
        self.store = Store()
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeMeilisearchServer:
        self._thread = threading.Thread(target=self.serve_forever, name="fake-meilisearch", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        self.store.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the Meilisearch stand-in (NOT Meilisearch).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7700)
    parser.add_argument("--api-key")
    args = parser.parse_args()
    server = FakeMeilisearchServer(args.host, args.port, args.api_key)
    print(f"Meilisearch stand-in listening on {server.url}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        server.store.stop()


if __name__ == "__main__":
    main()
