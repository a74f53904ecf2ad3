from django.core.management.base import BaseCommand
from django.db import transaction

from notifications.outbox import delivery_requests_held
from portal.demo import DEMO_MEMBERS, DEMO_OPERATOR, DEMO_PASSWORD, DEMO_TOTP_SECRET, seed_firms
from workflows.demo import DEMO_PROVIDERS, demo_calendar_address, seed_workflows


class Command(BaseCommand):
    help = (
        "Create the fixed demo firms, accounts and workflows. "
        "Idempotent: a second run changes nothing."
    )

    @transaction.atomic
    def handle(self, *args, **options):
        firms = seed_firms()
        with delivery_requests_held():  # one worker run when the seed commits, not hundreds
            created = seed_workflows(firms)
        self.stdout.write(
            self.style.SUCCESS(
                "Demo data "
                + ("created" if created else "already present")
                + " (demo only; these logins are public):"
            )
        )
        for email, _, _, role in DEMO_MEMBERS:
            self.stdout.write(f"  {email:<32} {role.label}")
        self.stdout.write(f"  {DEMO_OPERATOR:<32} Platform operator (/admin/)")
        for email, label in DEMO_PROVIDERS:
            self.stdout.write(f"  {email:<32} {label}")
        self.stdout.write(f"  password: {DEMO_PASSWORD}")
        self.stdout.write(f"  TOTP secret for staff, admins and the operator: {DEMO_TOTP_SECRET}")
        self.stdout.write("  Providers may also log in with a code sent by email (see var/mail/).")
        if address := demo_calendar_address():
            self.stdout.write(
                f"  Calendar feed of staff@northwind.example (subscribe in a calendar app): "
                f"{address}"
            )
