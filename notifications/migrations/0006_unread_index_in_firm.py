"""The unread count's index with the firm in it, built CONCURRENTLY before the old one is
dropped CONCURRENTLY: the notifications table is the largest there is, and neither step
holds its writes."""

from django.db import migrations, models

from portal.migration_operations import AddIndexOnline, RemoveIndexOnline


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("notifications", "0005_bouncing_addresses"),
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
                fields=["recipient", "firm", "due_at"],
                name="notif_unread_in_firm",
            ),
        ),
        RemoveIndexOnline(model_name="notification", name="notif_unread"),
    ]
