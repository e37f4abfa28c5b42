"""A task's arguments checked against its annotations (pydantic), where they enter.

Arguments travel to Redis as JSON, so a value is checked as the JSON it becomes, in pydantic's
strict JSON mode: ``42`` fits ``int`` and ``float``, ``"42"`` fits neither, an ISO string fits
``datetime`` (the task receives the string, as it always has), and ``true`` is not an ``int``.
Parameters without an annotation (or with one pydantic cannot check, such as a model instance)
accept any JSON value, as before. Text from a command line is converted first where that is
unambiguous (:meth:`ArgumentTypes.from_text`): ``content_id=42`` is an int for an ``int``
parameter and the string ``"42"`` for a ``str`` one.
"""

from __future__ import annotations

import functools
import inspect
import json
import typing
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .exceptions import TaskArgumentError

if TYPE_CHECKING:
    from pydantic import TypeAdapter

# pydantic is imported where a task's arguments are first checked, not with this module: a worker
# imports the registry before its first job and checks no arguments to run it (0.1 s of its start).

# Arguments nested deeper than this (lists and dicts within each other) are refused: no task needs
# them, and a hostile payload of thousands of levels would exhaust the recursion limit downstream.
MAX_DEPTH = 32


def _type_name(annotation: Any) -> str:
    return annotation.__name__ if isinstance(annotation, type) else str(annotation).replace("typing.", "")


def _depth_exceeds(value: Any, limit: int) -> bool:
    """Whether ``value`` nests lists/dicts more than ``limit`` levels deep (iterative: no recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list | tuple):
            if depth > limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return False


# ``json.dumps(values, allow_nan=False)`` builds this encoder anew on every call: a microsecond an enqueue keeps.
_strict_json = json.JSONEncoder(allow_nan=False).encode


def _nested(values: dict[str, Any]) -> bool:
    """Whether any of ``values`` is a list or dict (most calls pass none: the depth walk is skipped)."""
    return any(isinstance(value, (dict, list, tuple)) for value in values.values())


def _finite(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except ValueError:
        return False
    return True


def to_json(task_name: str, values: dict[str, Any]) -> str:
    """``values`` as the JSON text Redis will hold; raises ``TaskArgumentError`` naming the problem
    (too deep, not JSON, or NaN/Infinity, which JSON cannot hold)."""
    if _nested(values) and _depth_exceeds(values, MAX_DEPTH):
        raise TaskArgumentError(f"{task_name}(): arguments nest more than {MAX_DEPTH} levels deep.")
    try:
        return _strict_json(values)
    except ValueError:
        name = next((name for name, value in values.items() if not _finite(value)), "?")
        raise TaskArgumentError(
            f"{task_name}(): argument {name} holds NaN or Infinity, which JSON has no way to store: "
            "pass a number or None."
        ) from None
    except TypeError as exc:
        raise TaskArgumentError(f"{task_name}(): arguments must be JSON-serializable: {exc}.") from None


class ArgumentTypes:
    """The annotated parameters of one task function, from the ``skip``-th on (past ``ctx``)."""

    def __init__(self, func: Callable[..., Any], skip: int) -> None:
        self.func = func
        self.skip = skip

    @functools.cached_property
    def fields(self) -> dict[str, tuple[Any, TypeAdapter]]:
        """Parameter name -> (annotation, its adapter), for the parameters pydantic can check."""
        from pydantic import PydanticSchemaGenerationError, TypeAdapter

        try:
            hints = typing.get_type_hints(self.func)
        except Exception:  # an annotation that names something not importable here: check nothing
            return {}
        fields = {}
        for parameter in list(inspect.signature(self.func).parameters.values())[self.skip :]:
            if parameter.name not in hints or parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
                continue
            annotation = hints[parameter.name]
            try:
                fields[parameter.name] = (annotation, TypeAdapter(annotation, config=None))
            except (PydanticSchemaGenerationError, TypeError):
                continue
        return fields

    @functools.cached_property
    def _all(self) -> TypeAdapter | None:
        if not self.fields:
            return None
        from pydantic import ConfigDict, TypeAdapter, with_config

        arguments = typing.TypedDict(  # type: ignore[misc]
            "Arguments", {name: annotation for name, (annotation, _) in self.fields.items()}, total=False
        )
        return TypeAdapter(with_config(ConfigDict(extra="ignore"))(arguments))

    def check(self, task_name: str, values: dict[str, Any], text: str | None = None) -> None:
        """Raises ``TaskArgumentError`` naming the first argument whose JSON does not fit its type.

        ``text`` is ``values`` as JSON when the caller has it already (it saves a second dump).
        """
        if self._all is None or not (values.keys() & self.fields.keys()):
            return
        try:
            self._all.validate_json(text if text is not None else json.dumps(values), strict=True)
        except ValueError as exc:  # pydantic's ValidationError is one
            from pydantic import ValidationError

            if not isinstance(exc, ValidationError):
                raise
            error = exc.errors(include_url=False)[0]
            name = str(error["loc"][0]) if error["loc"] else "?"
            annotation = self.fields[name][0] if name in self.fields else None
            expected = _type_name(annotation) if annotation is not None else "its annotation"
            raise TaskArgumentError(
                f"{task_name}(): argument {name} must be {expected}, got {values.get(name)!r} ({error['msg']})."
            ) from None

    def from_text(self, name: str, raw: str) -> Any:
        """A command line's ``NAME=VALUE`` text as the JSON value for parameter ``name``.

        Annotated: the value of the annotated type the text unambiguously denotes (read as JSON,
        else as a string), as JSON; a text that fits neither is passed on as given, for ``check``
        to refuse with its message. Not annotated: JSON where the text parses, else the string.
        Raises ``TaskArgumentError`` for a text nesting deeper than Python's JSON parser can go.
        """
        try:
            if name in self.fields:
                adapter = self.fields[name][1]
                for read in (adapter.validate_json, adapter.validate_python):
                    try:
                        return adapter.dump_python(read(raw), mode="json")
                    except ValueError:  # pydantic's ValidationError too
                        continue
            try:
                return json.loads(raw)
            except ValueError:
                return raw
        except RecursionError:  # thousands of nested brackets: refused like any nesting past MAX_DEPTH
            raise TaskArgumentError(f"Argument {name!r} nests more than {MAX_DEPTH} levels deep.") from None


@functools.cache
def argument_types(func: Callable[..., Any], skip: int) -> ArgumentTypes:
    """The (cached) ``ArgumentTypes`` of ``func``."""
    return ArgumentTypes(func, skip)
