from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from devtools.bench import Bench


class Command(BaseCommand):
    help = "Measure pages and jobs against their own SQL floor; writes var/bench/<size>.json."

    def add_arguments(self, parser):
        parser.add_argument("--size", default="S", help="The dataset's name, for the report.")
        parser.add_argument("--repeat", type=int, default=30, help="Measured runs per page.")
        parser.add_argument("--emails", type=int, default=5000, help="Reminders to deliver.")
        parser.add_argument(
            "--only", choices=["pages", "scan", "delivery"], default="", help="One part only."
        )

    def handle(self, *args, size, repeat, emails, only, **options):
        out = Path(settings.VAR_DIR) / "bench" / f"{size}.json"
        bench = Bench(size=size, repeat=repeat, out=out, log=self.stdout.write)
        result = bench.run(emails=emails, only=only)
        self.stdout.write("")
        header = ("operation", "median ms", "p95 ms", "queries", "sql ms", "overhead")
        self.stdout.write("{:<20}{:>10}{:>9}{:>9}{:>9}{:>10}".format(*header))
        for name, entry in result["operations"].items():
            if "median_ms" in entry:
                self.stdout.write(
                    f"{name:<20}{entry['median_ms']:>10}{entry['p95_ms']:>9}{entry['queries']:>9}"
                    f"{entry['sql_ms']:>9}{entry['overhead_ratio']!s:>10}"
                )
            else:
                self.stdout.write(f"{name:<20}{entry}")
        self.stdout.write(self.style.SUCCESS(f"written {out}"))
