"""At most one open enrollment per profile and kind (issue 11, finding 8).

The unique index is built without blocking writes: CREATE UNIQUE INDEX CONCURRENTLY on
PostgreSQL, outside a transaction (atomic = False); SQLite, the embedded default, has no
concurrent build and small tables. The state is Django's ordinary AddConstraint, so the
model and the database agree and `makemigrations --check` stays clean.

Before the index, duplicates that double-submits already made are closed: per profile and
kind, the open enrollment furthest along (the oldest among equals) stays; the others are
withdrawn with their open signature rounds cancelled and an audit event each, so nothing is
deleted and the timeline says what happened. A build interrupted earlier leaves an INVALID
index behind: it is dropped and built again.
"""

from django.db import migrations, models
from django.db.models import Count
from django.utils import timezone

NAME = "wf_enrollment_one_open_per_kind"
OPEN = "('preparing', 'awaiting_signature', 'submitted', 'in_development')"


OPEN_STATES = ["preparing", "awaiting_signature", "submitted", "in_development"]
FURTHEST_FIRST = ["in_development", "submitted", "awaiting_signature", "preparing"]
OPEN_ROUND_STATES = ["awaiting_signature", "provider_says_signed", "mailed"]


def close_duplicates(apps, schema_editor):
    Enrollment = apps.get_model("workflows", "Enrollment")
    SignatureRound = apps.get_model("workflows", "SignatureRound")
    AuditEvent = apps.get_model("portal", "AuditEvent")
    Notification = apps.get_model("notifications", "Notification")
    duplicated = (
        Enrollment.objects.filter(state__in=OPEN_STATES)
        .values("profile_id", "kind")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
    )
    now = timezone.now()
    for group in duplicated.iterator():
        open_ones = sorted(
            Enrollment.objects.filter(
                profile_id=group["profile_id"], kind=group["kind"], state__in=OPEN_STATES
            ).select_related("profile__client"),
            key=lambda e: (FURTHEST_FIRST.index(e.state), e.pk),
        )
        for extra in open_ones[1:]:
            rounds = SignatureRound.objects.filter(enrollment=extra, state__in=OPEN_ROUND_STATES)
            Notification.objects.filter(
                subject_type="signatureround",
                subject_id__in=[str(r.public_id) for r in rounds],
                state="scheduled",
            ).update(state="cancelled")
            rounds.update(state="cancelled", closed_at=now, state_entered_at=now)
            Enrollment.objects.filter(pk=extra.pk).update(
                state="withdrawn", state_entered_at=now, holder="firm", holder_reason=""
            )
            AuditEvent.objects.create(
                verb="enrollment.state_changed",
                firm_id=extra.firm_id,
                target_type="workflows.enrollment",
                target_id=str(extra.public_id),
                target_label=f"Duplicate {extra.kind} enrollment",
                client_uuid=extra.profile.client.public_id,
                data={
                    "from": extra.state,
                    "to": "withdrawn",
                    "reason": "A duplicate of an open enrollment of the same kind, closed "
                    "when one open enrollment per kind became a rule",
                },
                created_at=now,
            )


def create_index(apps, schema_editor):
    concurrently = "CONCURRENTLY " if schema_editor.connection.vendor == "postgresql" else ""
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(
                "SELECT NOT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                "WHERE c.relname = %s",
                [NAME],
            )
            row = cursor.fetchone()
        if row and row[0]:  # left INVALID by an interrupted build
            schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {NAME}")
    schema_editor.execute(
        f"CREATE UNIQUE INDEX {concurrently}IF NOT EXISTS {NAME} "
        f"ON workflows_enrollment (profile_id, kind) WHERE state IN {OPEN}"
    )


def drop_index(apps, schema_editor):
    concurrently = "CONCURRENTLY " if schema_editor.connection.vendor == "postgresql" else ""
    schema_editor.execute(f"DROP INDEX {concurrently}IF EXISTS {NAME}")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("workflows", "0001_initial"),
        ("portal", "0001_initial"),
        ("notifications", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(close_duplicates, migrations.RunPython.noop, atomic=True),
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
