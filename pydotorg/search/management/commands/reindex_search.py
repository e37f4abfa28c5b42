from asgiref.sync import async_to_sync
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from pydotorg.search.documents import TYPES
from pydotorg.search.indexer import index_objects
from pydotorg.search.indexing import BATCH_SIZE, schedule_index

from ._progress import ProgressBar


class Command(BaseCommand):
    help = (
        "Reindex every object of one content type (after queryset.update(), imports or other bulk "
        "changes that send no signals): upsert what is indexable, remove the rest."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("content_type", choices=list(TYPES), help="The type to reindex.")
        parser.add_argument("--ids", type=int, nargs="+", help="Only these primary keys.")
        parser.add_argument(
            "--enqueue", action="store_true", help="Schedule batch jobs for the worker instead of indexing here."
        )

    def handle(self, *args, content_type: str, ids: list[int] | None, enqueue: bool, **options) -> None:
        model = TYPES[content_type].model
        pks = sorted(ids) if ids else list(model._default_manager.order_by("pk").values_list("pk", flat=True))
        if enqueue:
            with transaction.atomic():
                schedule_index(content_type, pks)
            jobs = -(-len(pks) // BATCH_SIZE)
            self.stdout.write(self.style.SUCCESS(f"Scheduled {len(pks):,} {content_type} objects in {jobs} job(s)."))
            return
        try:
            result = async_to_sync(self._reindex)(content_type, pks, ProgressBar(self.stdout))
        except Exception as exc:
            raise CommandError(f"Reindexing {content_type} failed: {type(exc).__name__}: {exc}") from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"Reindexed {content_type}: {result['upserted']:,} indexed, {result['deleted']:,} removed."
            )
        )

    async def _reindex(self, content_type: str, pks: list[int], progress: ProgressBar) -> dict[str, int]:
        upserted = deleted = 0
        for start in range(0, len(pks), BATCH_SIZE):
            result = await index_objects(content_type, pks[start : start + BATCH_SIZE])
            upserted += len(result["upserted"])
            deleted += len(result["deleted"])
            progress(content_type, min(start + BATCH_SIZE, len(pks)), len(pks))
        return {"upserted": upserted, "deleted": deleted}
