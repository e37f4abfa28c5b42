from asgiref.sync import async_to_sync
from django.core.management.base import BaseCommand, CommandError

from pydotorg.search.backends import backend_path
from pydotorg.search.rebuild import CHUNK_SIZE, MAX_CHUNK_SIZE, rebuild_index

from ._progress import ProgressBar


class Command(BaseCommand):
    help = (
        "Rebuild the search index beside the live one and swap it in (zero downtime). "
        "The same work as the nightly rebuild_search_index task, with a progress bar."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--chunk-size", type=int, default=CHUNK_SIZE, help="Rows read and sent per batch.")

    def handle(self, *args, chunk_size: int, **options) -> None:
        if not 1 <= chunk_size <= MAX_CHUNK_SIZE:
            raise CommandError(
                f"--chunk-size must be a whole number from 1 to {MAX_CHUNK_SIZE} (rows read and sent per batch; "
                f"default {CHUNK_SIZE}), not {str(chunk_size)[:30]}."
            )
        self.stdout.write(f"Rebuilding the search index ({backend_path().rsplit('.', 1)[-1]} backend)...")
        progress = ProgressBar(self.stdout) if options["verbosity"] > 0 else None
        try:
            result = async_to_sync(rebuild_index)(chunk_size=chunk_size, progress=progress)
        except Exception as exc:
            raise CommandError(
                f"Rebuild failed; the live index was left as it was. {type(exc).__name__}: {exc}"
            ) from exc
        total = sum(result["documents"].values())
        self.stdout.write(
            self.style.SUCCESS(
                f"Indexed {total:,} documents in {result['seconds']} s "
                f"({', '.join(f'{k}: {v:,}' for k, v in result['documents'].items())}); "
                f"{result['caught_up']} edits made meanwhile re-applied."
            )
        )
