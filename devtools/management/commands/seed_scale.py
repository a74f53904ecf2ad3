import time
from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.utils import timezone

from clients.models import Client
from devtools import scale
from workflows.models import OpenStep
from workflows.open_steps import fill_open_steps


class Command(BaseCommand):
    help = (
        "Build a large deterministic dataset for benchmarks on the configured database "
        "(tiny: CI, S: 20,000 clients, L: 200,000). Same seed and --now, same rows. "
        "Refuses a database that has clients unless --reset (which empties the tables first)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--size", choices=sorted(scale.SIZES), required=True)
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument(
            "--now",
            help="Base time (ISO 8601, e.g. 2026-03-02T15:00Z); default: now, to the hour.",
        )
        parser.add_argument(
            "--reset",
            action="store_true",
            help="Delete every firm, user, client, workflow, event and notification first.",
        )
        parser.add_argument(
            "--reuse",
            action="store_true",
            help="Keep the data if this size is already there; otherwise reset and build.",
        )

    def handle(self, *args, size, seed, now, reset, reuse, **options):
        if reuse:
            if scale.is_built(scale.SIZES[size]):
                self.stdout.write(f"Scale dataset {size} already built: reused.")
                if not OpenStep.objects.exists():  # built before the stuck report's table
                    fill_open_steps()
                    scale.analyze([OpenStep])
                    self.stdout.write("Its clients' open steps filled.")
                return
            reset = True
        base = self._base(now)
        started = time.perf_counter()
        with transaction.atomic():
            if reset:
                scale.reset()
            elif Client.objects.exists():
                raise CommandError(
                    "This database already has clients: use --reset to replace all its data "
                    "with the scale dataset (every firm, user and client is deleted)."
                )
        reset_seconds = time.perf_counter() - started
        builder = scale.ScaleBuilder(scale.SIZES[size], seed=seed, now=base)
        counts = builder.build()
        analyze_started = time.perf_counter()
        if not connection.in_atomic_block:
            scale.analyze()
        scale.fill_read_models()
        if not connection.in_atomic_block:
            scale.analyze([Client, OpenStep])
        analyze_seconds = time.perf_counter() - analyze_started
        elapsed = time.perf_counter() - started

        write = self.stdout.write
        write(
            f"Scale dataset {size} (seed {seed}, base {base.isoformat()}) on {connection.vendor}:"
        )
        for name, count in counts.items():
            write(f"  {name:<16} {count:>10,}")
        write(f"  {'total rows':<16} {sum(counts.values()):>10,}")
        bench = builder.bench
        write(f"Benchmark firm: {bench['firm']}; password for every account: {scale.PASSWORD}")
        write(f"  TOTP secret of admins and staff: {scale.TOTP_SECRET}")
        for label in ("admin", "busiest", "caseload 35", "caseload 350", "provider"):
            write(f"  {label:<13} {bench[label]}")
        timings = builder.timings
        write(
            f"Timings: reset {reset_seconds:.1f}s, planning rows {timings['plan']:.1f}s, "
            f"writing them {timings['write']:.1f}s, commits (deferred foreign key checks) and "
            f"sequences {timings['commit']:.1f}s, next deadlines and analyze {analyze_seconds:.1f}s"
        )
        write(self.style.SUCCESS(f"Done in {elapsed:.1f}s."))

    def _base(self, value: str | None) -> datetime:
        if not value:
            return timezone.now().replace(minute=0, second=0, microsecond=0)
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise CommandError(f"--now: not an ISO 8601 time: {value}") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment
