"""The stand-in's endpoints, each ``(store, body, query, *path parts) -> (status, payload)``, and ``ROUTES``."""

from __future__ import annotations

import json
import re
from http import HTTPStatus
from typing import Any

from .searching import search
from .store import ApiError, Index, Store, TaskFailed, now

DOC_ID = re.compile(r"^[a-zA-Z0-9_-]{1,511}$")
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
