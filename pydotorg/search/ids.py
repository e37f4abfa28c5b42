"""Primary keys from outside (a command's --ids, a task's content_id), checked before a query.

The site's keys are bigint (DEFAULT_AUTO_FIELD is BigAutoField): an id past 2**63-1 reached the
database as ``DataError: bigint out of range``, with the SQL, and 0 or -1 were looked up in vain.
"""

from __future__ import annotations

from typing import Any

BIGINT_MAX = 2**63 - 1
RANGE = f"whole numbers from 1 to {BIGINT_MAX} (bigint)"


def out_of_range(ids: list[int]) -> list[int]:
    """The ids among ``ids`` that no row can have."""
    return [pk for pk in ids if not 1 <= pk <= BIGINT_MAX]


class RowId(int):
    """A task argument annotation: an ``int`` from 1 to ``BIGINT_MAX``, refused at enqueue otherwise.

    tasks_app checks each argument against its annotation with pydantic (tasks_app/argument_types.py);
    it reads annotations without ``Annotated``'s extras, so the bounds are this type's own schema.
    """

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> Any:
        from pydantic_core import core_schema  # only where arguments are checked, as tasks_app does

        return core_schema.int_schema(ge=1, le=BIGINT_MAX)
