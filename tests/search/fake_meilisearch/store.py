"""The stand-in's state: indexes, and the write tasks, processed one at a time in order by one thread."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


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
