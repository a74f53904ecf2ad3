"""The index of running reconsideration windows, built without locking the enrollments table
(CREATE INDEX CONCURRENTLY on PostgreSQL, which cannot run inside a transaction)."""

from django.db import migrations, models

from portal.migration_operations import AddIndexOnline


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("workflows", "0004_outcomes_and_development"),
    ]

    operations = [
        AddIndexOnline(
            model_name="enrollment",
            index=models.Index(
                condition=models.Q(("reconsideration", "open")),
                fields=["reconsideration_deadline"],
                name="wf_enrollment_reconsider_due",
            ),
        ),
    ]
