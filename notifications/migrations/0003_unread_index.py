"""The unread count's index, built CONCURRENTLY on PostgreSQL: the notifications table is
the largest there is, and a plain CREATE INDEX would hold its writes for the whole build."""

from django.conf import settings
from django.db import migrations, models

from portal.migration_operations import AddIndexOnline


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("notifications", "0002_initial"),
        ("portal", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        AddIndexOnline(
            model_name="notification",
            index=models.Index(
                condition=models.Q(
                    ("channel", "in_app"),
                    ("read_at__isnull", True),
                    ("state__in", ["scheduled", "sent"]),
                ),
                fields=["recipient", "due_at"],
                name="notif_unread",
            ),
        ),
    ]
