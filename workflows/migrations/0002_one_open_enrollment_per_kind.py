"""At most one open enrollment per profile and kind (issue 11, finding 8).

The unique index is built without blocking writes: CREATE UNIQUE INDEX CONCURRENTLY on
PostgreSQL, outside a transaction (atomic = False); SQLite, the embedded default, has no
concurrent build and small tables. The state is Django's ordinary AddConstraint, so the
model and the database agree and `makemigrations --check` stays clean.
"""

from django.db import migrations, models

NAME = "wf_enrollment_one_open_per_kind"
OPEN = "('preparing', 'awaiting_signature', 'submitted', 'in_development')"


def create_index(apps, schema_editor):
    concurrently = "CONCURRENTLY " if schema_editor.connection.vendor == "postgresql" else ""
    schema_editor.execute(
        f"CREATE UNIQUE INDEX {concurrently}IF NOT EXISTS {NAME} "
        f"ON workflows_enrollment (profile_id, kind) WHERE state IN {OPEN}"
    )


def drop_index(apps, schema_editor):
    concurrently = "CONCURRENTLY " if schema_editor.connection.vendor == "postgresql" else ""
    schema_editor.execute(f"DROP INDEX {concurrently}IF EXISTS {NAME}")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("workflows", "0001_initial")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddConstraint(
                    model_name="enrollment",
                    constraint=models.UniqueConstraint(
                        condition=models.Q(
                            state__in=[
                                "preparing",
                                "awaiting_signature",
                                "submitted",
                                "in_development",
                            ]
                        ),
                        fields=("profile", "kind"),
                        name=NAME,
                    ),
                ),
            ],
            database_operations=[migrations.RunPython(create_index, drop_index)],
        ),
    ]
