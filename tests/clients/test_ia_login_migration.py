"""clients/migrations/0007: each provider's I&A situation moves from their profiles to the
person (issue 10, section 6), on a database migrated back to before it."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("clients", "0006_ia_login_per_person")]
AFTER = [("clients", "0008_remove_profile_ia_fields")]


@pytest.fixture
def _back_to_the_latest_schema():
    """Migrating back to clients 0006 also unapplies every later migration that depends on
    it (in any app); the tests after this one need them all again."""
    yield
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("_back_to_the_latest_schema")
def test_the_persons_login_is_their_individual_profiles(northwind):
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
    group_admin = client_with(
        {},
        {"ia_controller": "someone_else", "ia_controller_note": "Group admin"},
        "1111111120",
    )
    lost = client_with(
        {"ia_controller": "someone_else", "ia_controller_note": "Former biller"},
        {"password_reset_likely": True},
        "1111111138",
    )
    executor = MigrationExecutor(connection)
    executor.migrate(AFTER)
    from clients.models import Client as Current

    def person(pk):
        client = Current.objects.get(pk=pk)
        return client.ia_controller, client.ia_controller_note, client.password_reset_likely

    assert person(plain) == ("provider", "", False)
    # An organization's login held by its group admin is not the provider's own login.
    assert person(group_admin) == ("provider", "", False)
    assert person(lost) == ("someone_else", "Former biller", True)
