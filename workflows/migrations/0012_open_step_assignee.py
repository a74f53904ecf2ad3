"""The open steps carry their client's assigned staff member (the stuck report counts by it
without joining the clients). The column is added empty (instant: nullable, no index; its
brief exclusive lock waits at most 5 seconds behind a long reader, then the migration fails
and can be run again rather than holding every transition up), then filled from the clients
in batches of open-step ids, one transaction per batch: the table may be large and live.
Safe to run again; a row a transition rewrites meanwhile is written whole, and the reconcile
that runs when beat starts repairs anything missed."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models, transaction

BATCH = 5000


def _set(statement: str):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(statement)

    return run


def fill_assignees(apps, schema_editor):
    OpenStep = apps.get_model("workflows", "OpenStep")
    Client = apps.get_model("clients", "Client")
    last = 0
    while True:
        ids = list(
            OpenStep.objects.filter(pk__gt=last).order_by("pk").values_list("pk", flat=True)[:BATCH]
        )
        if not ids:
            return
        with transaction.atomic():
            OpenStep.objects.filter(pk__in=ids).update(
                assignee_id=models.Subquery(
                    Client.objects.filter(pk=models.OuterRef("client_id")).values(
                        "assigned_staff_id"
                    )[:1]
                )
            )
        last = ids[-1]


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("workflows", "0011_open_steps"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RunPython(_set("SET lock_timeout = '5s'"), _set("RESET lock_timeout")),
        migrations.AddField(
            model_name="openstep",
            name="assignee",
            field=models.ForeignKey(
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.RunPython(_set("RESET lock_timeout"), _set("SET lock_timeout = '5s'")),
        migrations.RunPython(fill_assignees, migrations.RunPython.noop),
    ]
