from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from portal.backup import backup_restore
from portal.errors import DomainError


class Command(BaseCommand):
    help = (
        "Restore an archive made by `backup`: the documents first, then the database, then "
        "every table's row count checked against the backup. Refuses a database that is not "
        'empty unless --force (docs/deploy.md, "Backup and restore").'
    )

    def add_arguments(self, parser):
        parser.add_argument("archive", type=Path, help="The .tar file written by `backup`.")
        parser.add_argument(
            "--force",
            action="store_true",
            help="Replace the database even if it has tables (everything in it is lost), and "
            "overwrite documents of the same name.",
        )

    def handle(self, *args, archive, force, **options):
        try:
            restored = backup_restore(archive=archive, force=force)
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(
            self.style.SUCCESS(f"Restored {restored.archive} (taken {restored.taken_at})")
        )
        self.stdout.write(
            f"  database ({restored.engine}): {len(restored.tables)} tables, "
            f"{restored.rows:,} rows; every table's row count matches the backup"
        )
        if restored.documents_written or restored.documents_kept:
            self.stdout.write(
                f"  documents: {restored.documents_written:,} written to the "
                f"{restored.documents_where}, {restored.documents_kept:,} already there (kept)"
            )
        else:
            self.stdout.write(f"  documents: none in the archive ({restored.documents_where})")
        self.stdout.write(
            f"  in {restored.seconds:.2f} s. Next: `python manage.py migrate` (if this code is "
            "newer than the backup), then start web, worker and beat."
        )
