"""Copy each provider's I&A situation from their profiles to the person: who controls the
login and its note come from the individual profile (the provider's own login; an
organization's "someone else" was the group's admin, whom its officials now name), and a
likely password reset if any profile had one. Batched, one transaction per batch (the
clients table may be large and live); safe to run again."""

from django.db import migrations, transaction

BATCH = 2000


def copy_to_person(apps, schema_editor):
    Client = apps.get_model("clients", "Client")
    Profile = apps.get_model("clients", "Profile")
    last = 0
    while True:
        with transaction.atomic():
            ids = list(
                Client.objects.filter(pk__gt=last)
                .order_by("pk")
                .values_list("pk", flat=True)[:BATCH]
            )
            if not ids:
                return
            situation = {}
            for client_id, kind, controller, note, reset in Profile.objects.filter(
                client_id__in=ids
            ).values_list(
                "client_id", "kind", "ia_controller", "ia_controller_note", "password_reset_likely"
            ):
                person = situation.setdefault(client_id, ["provider", "", False])
                if kind == "individual":
                    person[0], person[1] = controller, note
                person[2] = person[2] or reset
            for client_id, (controller, note, reset) in situation.items():
                if (controller, note, reset) != ("provider", "", False):
                    Client.objects.filter(pk=client_id).update(
                        ia_controller=controller,
                        ia_controller_note=note,
                        password_reset_likely=reset,
                    )
        last = ids[-1]


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("clients", "0006_ia_login_per_person"),
    ]

    operations = [migrations.RunPython(copy_to_person, migrations.RunPython.noop)]
