from django.core.management.base import BaseCommand, CommandError

from portal.errors import DomainError
from portal.services import firm_create


class Command(BaseCommand):
    help = "Create a firm and email an invitation to its first admin."

    def add_arguments(self, parser):
        parser.add_argument("name", help='The firm\'s name, e.g. "Northwind Credentialing"')
        parser.add_argument("--admin-email", required=True, help="The first admin's email")
        parser.add_argument("--time-zone", default="America/New_York")

    def handle(self, *args, name, admin_email, time_zone, **options):
        try:
            firm, invitation = firm_create(name=name, admin_email=admin_email, time_zone=time_zone)
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"Created {firm.name} ({firm.slug}); invitation emailed to the admin."
            )
        )
