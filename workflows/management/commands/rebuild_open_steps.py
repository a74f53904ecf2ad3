from django.core.management.base import BaseCommand, CommandError

from portal.models import Firm
from workflows import open_steps


class Command(BaseCommand):
    help = (
        "Make the stuck report's open steps what the workflows say, firm by firm, and say "
        "how many rows that took (and the clients' next deadlines). Beat runs the same when "
        "it starts and daily; safe to run again at any time (a second run changes nothing)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--firm", help="Only this firm (its slug).")

    def handle(self, *args, firm, **options):
        firms = Firm.objects.order_by("pk")
        if firm:
            firms = firms.filter(slug=firm)
            if not firms.exists():
                raise CommandError(f"No firm with the slug {firm!r}.")
        stale = missing = deadlines = 0
        for each in firms:
            result = open_steps.reconcile(each)
            stale, missing = stale + result["stale"], missing + result["missing"]
            deadlines += result["next_deadline"]
            self.stdout.write(
                f"{each.slug}: {result['clients']:,} clients, {result['stale']:,} stale rows "
                f"removed, {result['missing']:,} missing rows added, "
                f"{result['next_deadline']:,} next deadlines corrected"
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"Open steps in order: {stale:,} stale rows removed, {missing:,} added, "
                f"{deadlines:,} next deadlines corrected."
            )
        )
