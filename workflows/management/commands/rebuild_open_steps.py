from django.core.management.base import BaseCommand, CommandError

from portal.models import Firm
from workflows import open_steps


class Command(BaseCommand):
    help = (
        "Make the stuck report's open steps what the workflows say, firm by firm, and say "
        "how many rows that took. Run once when upgrading to the release that adds them; "
        "safe to run again at any time (a second run changes nothing)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--firm", help="Only this firm (its slug).")

    def handle(self, *args, firm, **options):
        firms = Firm.objects.order_by("pk")
        if firm:
            firms = firms.filter(slug=firm)
            if not firms.exists():
                raise CommandError(f"No firm with the slug {firm!r}.")
        stale = missing = 0
        for each in firms:
            result = open_steps.reconcile(each)
            stale, missing = stale + result["stale"], missing + result["missing"]
            self.stdout.write(
                f"{each.slug}: {result['clients']:,} clients, {result['stale']:,} stale rows "
                f"removed, {result['missing']:,} missing rows added"
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"Open steps in order: {stale:,} stale rows removed, {missing:,} added."
            )
        )
