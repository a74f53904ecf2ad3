"""Each client's next deadline, stored and indexed for the caseload.

Written to survive a live database (issue 12, finding 6): non-atomic; the indexes are built
and dropped CONCURRENTLY on PostgreSQL; the new column's constant default is metadata only;
the backfill walks the clients in batches of BATCH, each its own short transaction.
"""

import datetime

from django.conf import settings
from django.db import migrations, models
from django.db.models import OuterRef, Subquery, Value
from django.db.models.functions import Coalesce, Least

from portal.migration_operations import AddIndexOnline, RemoveIndexOnline

BATCH = 2000

NO_DEADLINE = datetime.datetime(9999, 12, 31, 0, 0, tzinfo=datetime.UTC)
# Frozen as they were when this migration was written (a migration imports no app code).
GRANT_OPEN_STATES = ("prepared", "awaiting_provider", "provider_says_done")
ROUND_OPEN_STATES = ("awaiting_signature", "provider_says_signed", "mailed")


def fill_next_deadline(apps, schema_editor):
    """Each client's soonest open deadline (an access request's or a signature round's)."""
    Client = apps.get_model("clients", "Client")
    AccessGrant = apps.get_model("workflows", "AccessGrant")
    SignatureRound = apps.get_model("workflows", "SignatureRound")
    grant_deadline = Subquery(
        AccessGrant.objects.filter(
            profile__client=OuterRef("pk"), state__in=GRANT_OPEN_STATES, deadline__isnull=False
        )
        .order_by("deadline")
        .values("deadline")[:1],
        output_field=models.DateTimeField(),
    )
    round_deadline = Subquery(
        SignatureRound.objects.filter(
            enrollment__profile__client=OuterRef("pk"), state__in=ROUND_OPEN_STATES
        )
        .order_by("deadline")
        .values("deadline")[:1],
        output_field=models.DateTimeField(),
    )
    none = Value(NO_DEADLINE, output_field=models.DateTimeField())
    soonest = Least(Coalesce(grant_deadline, none), Coalesce(round_deadline, none))
    last = 0
    while True:
        ids = list(
            Client.objects.filter(pk__gt=last).order_by("pk").values_list("pk", flat=True)[:BATCH]
        )
        if not ids:
            return
        Client.objects.filter(pk__in=ids).update(next_deadline=soonest)
        last = ids[-1]


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("clients", "0002_initial"),
        ("workflows", "0001_initial"),
        ("portal", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        RemoveIndexOnline(
            model_name="client",
            name="clients_client_caseload",
        ),
        migrations.AddField(
            model_name="client",
            name="next_deadline",
            field=models.DateTimeField(
                default=datetime.datetime(9999, 12, 31, 0, 0, tzinfo=datetime.UTC),
                editable=False,
            ),
        ),
        AddIndexOnline(
            model_name="client",
            index=models.Index(
                fields=["firm", "assigned_staff", "next_deadline", "id"],
                name="clients_client_caseload",
            ),
        ),
        AddIndexOnline(
            model_name="client",
            index=models.Index(
                fields=["firm", "next_deadline", "id"], name="clients_client_urgency"
            ),
        ),
        migrations.RunPython(fill_next_deadline, migrations.RunPython.noop, elidable=True),
    ]
