"""clients/migrations/0007: each provider's I&A situation moves from their profiles to the
person (issue 10, section 6), on a database migrated back to before it."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("clients", "0006_ia_login_per_person")]
AFTER = [("clients", "0008_remove_profile_ia_fields")]


@pytest.mark.django_db(transaction=True)
def test_the_persons_login_takes_the_worst_of_their_profiles(northwind):
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    apps = executor.loader.project_state(BEFORE).apps
    Client = apps.get_model("clients", "Client")
    Organization = apps.get_model("clients", "Organization")
    Profile = apps.get_model("clients", "Profile")

    def client_with(individual: dict, organizational: dict | None, npi: str):
        client = Client.objects.create(
            firm_id=northwind.pk, first_name="A", last_name=npi, npi=npi, email=f"{npi}@x.test"
        )
        Profile.objects.create(firm_id=northwind.pk, client=client, kind="individual", **individual)
        if organizational is not None:
            organization = Organization.objects.create(
                firm_id=northwind.pk, client=client, legal_name=f"{npi} PLLC", kind="pllc"
            )
            Profile.objects.create(
                firm_id=northwind.pk,
                client=client,
                organization=organization,
                kind="organizational",
                **organizational,
            )
        return client.pk

    plain = client_with({}, {}, "1111111112")
    pllc_lost = client_with(
        {"ia_controller": "unknown"},
        {
            "ia_controller": "someone_else",
            "ia_controller_note": "Former biller",
            "password_reset_likely": True,
        },
        "1111111120",
    )
    executor = MigrationExecutor(connection)
    executor.migrate(AFTER)
    from clients.models import Client as Current

    assert Current.objects.values_list("ia_controller", "password_reset_likely").get(pk=plain) == (
        "provider",
        False,
    )
    moved = Current.objects.get(pk=pllc_lost)
    assert (moved.ia_controller, moved.ia_controller_note, moved.password_reset_likely) == (
        "someone_else",
        "Former biller",
        True,
    )
