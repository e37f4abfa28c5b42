"""Ids and sizes from outside are checked where they enter (a flag, a task argument), not by the database."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from pydotorg.search.ids import BIGINT_MAX
from tasks_app import enqueue
from tasks_app.registry import TaskArgumentError

HUGE = 99999999999999999999999

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("db_backend")]


@pytest.mark.parametrize(("ids", "named"), [(["-1", "0", str(HUGE)], f"-1, 0, {HUGE} are"), (["0"], "0 is")])
def test_reindex_refuses_ids_no_row_can_have(ids, named):
    # They reached PostgreSQL: "DataError: value ... is out of range for type bigint", with the SQL.
    with pytest.raises(CommandError) as caught:
        call_command("reindex_search", "page", "--ids", *ids, stdout=StringIO())
    assert str(caught.value) == f"--ids must be whole numbers from 1 to {BIGINT_MAX} (bigint); {named} not."


def test_reindex_takes_the_largest_bigint():
    out = StringIO()
    call_command("reindex_search", "page", "--ids", "1", str(BIGINT_MAX), stdout=out)
    assert "Reindexed page: 0 indexed, 2 removed." in out.getvalue()


@pytest.mark.parametrize("size", ["0", "100001", str(HUGE)])
def test_rebuild_refuses_a_chunk_size_out_of_range(size):
    # 9999999999999999999999 was "Rebuild failed ... DataError: bigint out of range".
    with pytest.raises(CommandError) as caught:
        call_command("rebuild_search_index", "--chunk-size", size, stdout=StringIO())
    assert str(caught.value) == (
        f"--chunk-size must be a whole number from 1 to 100000 (rows read and sent per batch; default 1000), "
        f"not {size[:30]}."
    )


@pytest.mark.parametrize("content_id", [HUGE, BIGINT_MAX + 1, 0, -1])
def test_index_content_refuses_an_id_no_row_can_have_at_enqueue(redis_db, content_id):
    # Accepted, then the job failed with DataError: bigint out of range.
    with pytest.raises(
        TaskArgumentError, match=rf"^index_content\(\): argument content_id must be RowId, got {content_id}"
    ):
        enqueue("index_content", content_type="page", content_id=content_id)
    with pytest.raises(
        TaskArgumentError, match=r"^index_content_batch\(\): argument ids must be list\[\S*RowId\], got \[1, "
    ):
        enqueue("index_content_batch", content_type="page", ids=[1, content_id])
    assert redis_db.dbsize() == 0


def test_index_content_takes_the_largest_bigint(redis_db):
    assert enqueue("index_content", content_type="page", content_id=BIGINT_MAX).key
