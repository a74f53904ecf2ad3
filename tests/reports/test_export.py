"""The firm's export (issue 12): every file of the firm in a valid ZIP with its manifest,
streamed, audited, admins only, never a row of another firm, a query count that does not grow
with the rows, and an empty firm's ZIP as valid as a busy one's."""

import csv
import io
import json
import zipfile
from datetime import datetime, timedelta

import pytest
from django.apps import apps
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from clients.models import Client, CMSRole
from notifications.models import Notification
from portal.models import AuditEvent, Firm
from reports.export import FORMAT, FORMAT_VERSION, LEFT_OUT, SHEETS
from tests.clients.factories import add_delegate, add_organization, make_client
from tests.workflows.documents import upload
from workflows import credentials, services
from workflows.revalidation import revalidation_set_due

pytestmark = pytest.mark.django_db

FILES = {sheet.name for sheet in SHEETS}
# Files the fixture leaves empty: nobody was invited and no address bounced.
NOT_SEEDED = {"invitations.csv", "bouncing_addresses.csv"}


def some_of_everything(client, staff) -> None:
    """One of each workflow record on `client`: a grant, an application in development with
    a signature round, a revalidation date, a credential with its document."""
    profile = client.profiles.get(kind="individual")
    services.grant_create(profile=profile, method="connection_request", actor=staff)
    enrollment = services.enrollment_create(profile=profile, kind="initial", actor=staff)
    services.round_open(enrollment=enrollment, actor=staff)
    submitted = services.enrollment_create(profile=profile, kind="change", actor=staff)
    services.enrollment_change_state(enrollment=submitted, to="submitted", actor=staff)
    services.development_open(
        enrollment=submitted, asked="Current license", holder="provider", actor=staff
    )
    revalidation_set_due(
        profile=profile, due_on=timezone.localdate() + timedelta(days=90), actor=staff
    )
    credentials.credential_add(
        profile=profile,
        kind=credentials.kind_for(client.firm, "malpractice"),
        actor=staff,
        expires_on=timezone.localdate() + timedelta(days=200),
        upload=upload(),
    )


def download(as_user, user):
    return fetch(as_user(user))


def fetch(browser):
    response = browser.post(reverse("firm_export"))
    assert response.status_code == 200
    assert response.streaming
    return response, zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))


def read_csv(archive, name) -> list[dict]:
    return list(csv.DictReader(io.TextIOWrapper(archive.open(name), encoding="utf-8")))


def all_text(archive) -> str:
    return "\n".join(archive.read(name).decode() for name in archive.namelist())


def test_an_admin_downloads_every_file_of_the_firm_with_its_manifest(
    as_user, northwind, northwind_admin, northwind_staff, rivera
):
    some_of_everything(rivera, northwind_staff)
    Client.objects.filter(pk=rivera.pk).update(notes='=HYPERLINK("http://evil.test")')

    response, archive = download(as_user, northwind_admin)

    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"].startswith('attachment; filename="credportal-northwind-')
    assert archive.testzip() is None
    assert set(archive.namelist()) == FILES | {"manifest.json"}
    manifest = json.loads(archive.read("manifest.json"))
    assert manifest["format"] == FORMAT
    assert manifest["format_version"] == FORMAT_VERSION
    assert manifest["firm"] == {
        "name": "Northwind Credentialing",
        "slug": "northwind",
        "public_id": str(northwind.public_id),
        "time_zone": "America/Chicago",
    }
    generated_at = datetime.fromisoformat(manifest["generated_at"])
    assert generated_at.utcoffset() == timezone.now().astimezone(northwind.zone).utcoffset()
    assert abs(timezone.now() - generated_at) < timedelta(minutes=1)
    assert manifest["generated_by"] == "admin@northwind.test"
    files = {entry["name"]: entry for entry in manifest["files"]}
    assert set(files) == FILES
    for name, entry in files.items():
        header = archive.read(name).decode().splitlines()[0]
        assert header == ",".join(entry["columns"])
        assert entry["rows"] == len(read_csv(archive, name)), name
        assert entry["rows"] > 0 or name in NOT_SEEDED, f"{name}: some of everything"
    assert files["clients.csv"]["values"]["ia_controller"]["provider"] == "The provider"

    (client,) = read_csv(archive, "clients.csv")
    assert client["public_id"] == str(rivera.public_id)
    assert client["npi"] == rivera.npi
    assert client["assigned_staff_email"] == "staff@northwind.test"
    assert client["notes"] == '\'=HYPERLINK("http://evil.test")'
    created = datetime.fromisoformat(client["created_at"])
    assert created.utcoffset() == rivera.created_at.astimezone(northwind.zone).utcoffset()
    assert created == rivera.created_at

    (document,) = read_csv(archive, "credential_files.csv")
    assert len(document["sha256"]) == 64
    assert manifest["documents"]["included"] is False
    assert manifest["documents"]["count"] == 1
    assert manifest["documents"]["bytes"] == int(document["size"])
    (revalidation,) = read_csv(archive, "revalidations.csv")
    assert revalidation["client_public_id"] == str(rivera.public_id)

    event = AuditEvent.objects.get(verb="firm.exported")
    assert (event.actor, event.firm, event.target_id) == (
        northwind_admin,
        northwind,
        str(northwind.public_id),
    )
    assert any(row["verb"] == "firm.exported" for row in read_csv(archive, "events.csv"))


def test_no_row_of_another_firm_is_in_the_export(
    as_user, northwind_admin, northwind_staff, rivera, bluebird, bluebird_staff
):
    some_of_everything(rivera, northwind_staff)
    chen = make_client(
        bluebird, actor=bluebird_staff, first_name="Wei", last_name="Chen", email="chen@b.test"
    )
    organization = add_organization(chen, actor=bluebird_staff, name="Chen Psychiatry PLLC")
    add_delegate(
        chen,
        actor=bluebird_staff,
        email="desk@chen.test",
        roles={organization.profile: CMSRole.ACCESS_MANAGER},
    )
    some_of_everything(chen, bluebird_staff)
    theirs = {
        str(public_id)
        for model in apps.get_models()
        if any(f.name == "public_id" for f in model._meta.fields)
        and any(f.name == "firm" for f in model._meta.fields)
        for public_id in model._default_manager.filter(firm=bluebird).values_list(
            "public_id", flat=True
        )
    } | {
        str(bluebird.public_id),
        "Chen",
        "chen@b.test",
        "Chen Psychiatry",
        "staff@bluebird",
        "desk@chen",
    }
    assert len(theirs) > 20, "Bluebird has data the export must leave out"

    _, archive = download(as_user, northwind_admin)

    text = all_text(archive)
    assert str(rivera.public_id) in text
    leaked = sorted(value for value in theirs if value in text)
    assert leaked == []


def test_the_export_makes_as_many_queries_for_one_client_as_for_many(
    as_user, northwind, northwind_admin, northwind_staff, bluebird, bluebird_admin, bluebird_staff
):
    some_of_everything(make_client(northwind, actor=northwind_staff), northwind_staff)
    for _ in range(8):
        client = make_client(bluebird, actor=bluebird_staff)
        add_organization(client, actor=bluebird_staff, name=f"{client.last_name} PLLC")
        some_of_everything(client, bluebird_staff)

    def queries(user) -> int:
        browser = as_user(user)
        with CaptureQueriesContext(connection) as captured:
            fetch(browser)
        return len(captured)

    one, many = queries(northwind_admin), queries(bluebird_admin)
    # The session, the user and the membership (middleware), the audit event, one query per
    # file (read in chunks), and the documents' count and size for the manifest.
    assert one == many == 3 + 1 + len(SHEETS) + 1


def test_a_firm_with_no_data_exports_a_valid_zip(as_user, bluebird, bluebird_admin):
    _, archive = download(as_user, bluebird_admin)

    assert archive.testzip() is None
    manifest = json.loads(archive.read("manifest.json"))
    rows = {entry["name"]: entry["rows"] for entry in manifest["files"]}
    assert rows.pop("firm.csv") == 1
    assert rows.pop("members.csv") == 1
    # The admin's login (as the test client logs in) and this export.
    assert rows.pop("events.csv") == AuditEvent.objects.filter(firm=bluebird).count() == 2
    assert set(rows.values()) == {0}
    (clients,) = (entry for entry in manifest["files"] if entry["name"] == "clients.csv")
    assert archive.read("clients.csv").decode().splitlines() == [",".join(clients["columns"])]
    assert manifest["documents"] == {**manifest["documents"], "count": 0, "bytes": 0}


def test_the_export_carries_no_key_to_anything(as_user, northwind_admin, northwind_staff, rivera):
    """Email bodies carry one-tap sign-in links; calendar addresses and nonces are keys."""
    some_of_everything(rivera, northwind_staff)
    bodies = Notification.objects.filter(firm=rivera.firm, channel="email")
    assert any("/go/" in body for body in bodies.values_list("body_text", flat=True))

    _, archive = download(as_user, northwind_admin)

    text = all_text(archive)
    assert "/go/" not in text
    header = read_csv(archive, "notifications.csv")[0]
    assert not {"body_text", "body_html", "claim_token"} & set(header)
    assert "nonce" not in archive.read("invitations.csv").decode().splitlines()[0]


def test_a_get_is_refused_and_records_nothing(as_user, northwind_admin):
    response = as_user(northwind_admin).get(reverse("firm_export"))
    assert response.status_code == 405
    assert not AuditEvent.objects.filter(verb="firm.exported").exists()


def test_every_model_of_a_firm_is_exported_or_left_out_on_purpose():
    firm_models = {
        model
        for model in apps.get_models()
        if any(f.is_relation and f.related_model is Firm for f in model._meta.fields)
    }
    exported = {sheet.model for sheet in SHEETS}
    assert firm_models - exported - set(LEFT_OUT) == set()


def test_the_settings_page_offers_the_export_to_admins(as_user, northwind_admin):
    response = as_user(northwind_admin).get(reverse("firm_settings"))
    assert reverse("firm_export").encode() in response.content
    assert b"Download everything (ZIP)" in response.content
