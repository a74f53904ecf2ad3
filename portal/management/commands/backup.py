from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.template.defaultfilters import filesizeformat

from portal.backup import backup_create, default_directory
from portal.errors import DomainError


class Command(BaseCommand):
    help = (
        "Take a consistent backup of the database and the credential documents: one archive "
        'under var/backups/ (docs/deploy.md, "Backup and restore").'
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--directory",
            type=Path,
            default=None,
            help=f"Where to write the archive (default: {default_directory()}).",
        )

    def handle(self, *args, directory, **options):
        try:
            backup = backup_create(directory=directory)
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        size = backup.path.stat().st_size
        if backup.documents_where.startswith("folder"):
            documents = (
                f"{backup.documents:,} documents ({filesizeformat(backup.document_bytes)}) "
                f"from the {backup.documents_where}"
            )
        else:
            documents = (
                f"not copied: they are in the {backup.documents_where}, whose versioning is "
                "their backup"
            )
        self.stdout.write(self.style.SUCCESS(f"Backup written to {backup.path}"))
        self.stdout.write(
            f"  database ({backup.engine}): {len(backup.tables)} tables, {backup.rows:,} rows"
        )
        self.stdout.write(f"  documents: {documents}")
        self.stdout.write(f"  {filesizeformat(size)} in {backup.seconds:.2f} s")
