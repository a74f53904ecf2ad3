"""The open steps carry their client's assigned staff member (the stuck report counts by it
without joining the clients). The column is added empty (instant: nullable, no index), then
filled from the clients in batches of open-step ids, one transaction per batch: the table may
be large and live. Safe to run again; a row a transition rewrites meanwhile is written whole."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models, transaction

BATCH = 5000


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
        migrations.RunPython(fill_assignees, migrations.RunPython.noop),
    ]
