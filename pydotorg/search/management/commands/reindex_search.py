from asgiref.sync import async_to_sync
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from pydotorg.search.documents import TYPES
from pydotorg.search.ids import RANGE, out_of_range
from pydotorg.search.indexer import index_in_batches
from pydotorg.search.scheduling import schedule_index

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
        if bad := out_of_range(ids or []):
            said = ", ".join(map(str, bad[:5]))
            raise CommandError(f"--ids must be {RANGE}; {said} {'is' if len(bad) == 1 else 'are'} not.")
        model = TYPES[content_type].model
        pks = sorted(ids) if ids else list(model._default_manager.order_by("pk").values_list("pk", flat=True))
        if enqueue:
            # One outbox INSERT for every batch job, delivered to Redis together on commit.
            with transaction.atomic():
                keys = schedule_index(content_type, pks)
            self.stdout.write(
                self.style.SUCCESS(f"Scheduled {len(pks):,} {content_type} objects in {len(keys)} job(s).")
            )
            return
        progress = ProgressBar(self.stdout) if options["verbosity"] > 0 else None
        try:
            result = async_to_sync(index_in_batches)(content_type, pks, progress=progress)
        except Exception as exc:
            raise CommandError(f"Reindexing {content_type} failed: {type(exc).__name__}: {exc}") from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"Reindexed {content_type}: {result['upserted']:,} indexed, {result['deleted']:,} removed."
            )
        )
