from django.core.management.base import BaseCommand
from django.db import transaction

from portal.demo import DEMO_MEMBERS, DEMO_OPERATOR, DEMO_PASSWORD, DEMO_TOTP_SECRET, seed_firms


class Command(BaseCommand):
    help = "Create the fixed demo firms and accounts. Idempotent: a second run changes nothing."

    @transaction.atomic
    def handle(self, *args, **options):
        seed_firms()
        self.stdout.write(
            self.style.SUCCESS("Demo data ready (demo only; these logins are public):")
        )
        for email, _, _, role in DEMO_MEMBERS:
            self.stdout.write(f"  {email:<32} {role.label}")
        self.stdout.write(f"  {DEMO_OPERATOR:<32} Platform operator (/admin/)")
        self.stdout.write(f"  password: {DEMO_PASSWORD}   TOTP secret: {DEMO_TOTP_SECRET}")
