"""The index of open revalidations by due date, built without locking the enrollments table
(CREATE INDEX CONCURRENTLY on PostgreSQL, which cannot run inside a transaction)."""

from django.db import migrations, models

from portal.migration_operations import AddIndexOnline


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("workflows", "0009_credentials_file"),
    ]

    operations = [
        AddIndexOnline(
            model_name="enrollment",
            index=models.Index(
                condition=models.Q(
                    ("deadline__isnull", False),
                    (
                        "state__in",
                        ["preparing", "awaiting_signature", "submitted", "in_development"],
                    ),
                ),
                fields=["deadline"],
                name="wf_enrollment_due",
            ),
        ),
    ]
