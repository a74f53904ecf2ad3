"""The credentials file: uploads checked by content, requests that become to-dos, review,
expirations that feed the one notion of a clock, and documents only their people can read."""

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db.models import ProtectedError
from django.urls import reverse
from django.utils import timezone

from clients.models import Client, CMSRole
from notifications.models import Notification
from portal.models import AuditEvent
from reports.reports import ReportFilters, stuck_report
from tests.clients.factories import add_delegate
from tests.workflows.documents import (
    HEIC,
    PNG,
    WINDOWS_EXE,
    large_file,
    phone_photo,
    upload,
)
from workflows import credentials as services
from workflows.casefile import client_file
from workflows.errors import TransitionError
from workflows.models import Credential, CredentialFile
from workflows.rules import Party
from workflows.todos import todos_for

pytestmark = pytest.mark.django_db


def provider_party(client):
    return Party(name=client.display_name, is_provider=True)


def individual(client):
    return client.profiles.get(kind="individual")


def kind(firm, code):
    return services.kind_for(firm, code)


def today(firm):
    return timezone.now().astimezone(firm.zone).date()


def on_file(client, staff, code="malpractice", *, expires_in=200, **extra):
    return services.credential_add(
        profile=individual(client),
        kind=kind(client.firm, code),
        actor=staff,
        expires_on=today(client.firm) + timedelta(days=expires_in),
        upload=upload(),
        **extra,
    )


def requested(client, staff, code="malpractice", **extra):
    return services.credential_request(
        profile=individual(client), kind=kind(client.firm, code), actor=staff, **extra
    )


def client_todos(client, party):
    return todos_for(client_file(Client.objects.get(pk=client.pk)), party)


# --- the catalogue ----------------------------------------------------------------------


def test_a_firm_starts_with_the_default_catalogue_once(northwind):
    names = {kind.name for kind in services.catalogue(northwind)}
    assert {"State license", "DEA registration", "Malpractice certificate of insurance"} <= names
    assert len(services.catalogue(northwind)) == len(services.DEFAULT_KINDS)
    caqh = services.kind_for(northwind, "caqh")
    assert caqh.renews_every_days == 120
    assert not caqh.needs_file


# --- uploads: by content, limited in size, stored under generated names -----------------


def test_a_phone_jpeg_is_accepted_and_stored_under_a_generated_name(rivera, northwind_staff):
    credential = requested(rivera, northwind_staff)
    services.credential_upload(
        credential=credential,
        upload=phone_photo("Ana Rivera COI 2026.JPG"),
        actor=rivera.user,
        party=provider_party(rivera),
    )
    stored = CredentialFile.objects.get(credential=credential)
    assert stored.content_type == "image/jpeg"
    assert stored.version == 1
    assert "Rivera" not in stored.file.name
    assert "COI" not in stored.file.name
    assert stored.file.name.startswith(f"{rivera.firm.public_id}/")
    assert stored.file.name.endswith(".jpg")
    credential.refresh_from_db()
    assert credential.state == Credential.State.RECEIVED


@pytest.mark.parametrize(
    ("content", "name", "expected"),
    [(PNG, "license.png", "image/png"), (HEIC, "IMG_1.HEIC", "image/heic")],
)
def test_png_and_heic_are_accepted(rivera, northwind_staff, content, name, expected):
    credential = requested(rivera, northwind_staff)
    services.credential_upload(
        credential=credential,
        upload=upload(content, name, "application/octet-stream"),
        actor=northwind_staff,
    )
    assert credential.files.get().content_type == expected


def test_a_renamed_executable_is_refused_whatever_its_name(rivera, northwind_staff):
    credential = requested(rivera, northwind_staff)
    with pytest.raises(TransitionError, match="not a PDF or a photo"):
        services.credential_upload(
            credential=credential,
            upload=upload(WINDOWS_EXE, "malpractice-coi.pdf", "application/pdf"),
            actor=rivera.user,
            party=provider_party(rivera),
        )
    assert not CredentialFile.objects.exists()
    credential.refresh_from_db()
    assert credential.state == Credential.State.REQUESTED


def test_a_21_mb_file_is_refused_under_the_default_20_mb_limit(rivera, northwind_staff):
    credential = requested(rivera, northwind_staff)
    with pytest.raises(TransitionError, match="largest accepted is 20 MB"):
        services.credential_upload(
            credential=credential, upload=large_file(21), actor=northwind_staff
        )
    assert not CredentialFile.objects.exists()


def test_the_size_limit_is_the_firms_setting(rivera, northwind_staff):
    type(rivera.firm).objects.filter(pk=rivera.firm_id).update(upload_max_mb=30)
    credential = requested(Client.objects.get(pk=rivera.pk), northwind_staff)
    services.credential_upload(credential=credential, upload=large_file(21), actor=northwind_staff)
    assert credential.files.count() == 1


def test_an_empty_file_is_refused(rivera, northwind_staff):
    credential = requested(rivera, northwind_staff)
    with pytest.raises(TransitionError, match="empty"):
        services.credential_upload(
            credential=credential, upload=upload(b"", "coi.pdf"), actor=northwind_staff
        )


def test_every_version_is_kept(rivera, northwind_staff):
    credential = on_file(rivera, northwind_staff)
    services.credential_upload(credential=credential, upload=phone_photo(), actor=northwind_staff)
    versions = list(credential.files.order_by("version").values_list("version", "content_type"))
    assert versions == [(1, "application/pdf"), (2, "image/jpeg")]


def test_a_client_with_files_cannot_be_deleted_with_them(rivera, northwind_staff):
    on_file(rivera, northwind_staff)
    with pytest.raises(ProtectedError):
        Client.objects.get(pk=rivera.pk).delete()
    assert CredentialFile.objects.count() == 1


# --- requests become to-dos; review accepts or rejects with a reason --------------------


def test_a_request_is_a_to_do_for_the_provider_and_an_office_manager(rivera, northwind_staff):
    requested(rivera, northwind_staff, note="Your current COI, showing the 1M/3M limits")
    todo = next(t for t in client_todos(rivera, provider_party(rivera)) if t.credential)
    assert todo.title == "Upload your malpractice certificate of insurance"
    assert "Your current COI, showing the 1M/3M limits" in todo.steps
    assert todo.can_act
    assert todo.takes_upload
    assert todo.deadline.astimezone(rivera.firm.zone).date() == today(rivera.firm) + timedelta(14)
    office = rivera.delegates.get()
    party = Party(
        name=office.name,
        is_provider=False,
        roles={role.profile_id: role.cms_role for role in office.roles.all()},
        delegate_id=office.pk,
    )
    theirs = next(t for t in client_todos(rivera, party) if t.credential)
    assert theirs.can_act
    # The office manager's list says whose document it is.
    assert theirs.title == "Upload Ana's malpractice certificate of insurance"
    from workflows import steps

    assert steps.upload_document(what="DEA registration", renewal=True, whose="Ana's")[:2] == [
        "Ana's DEA registration expires soon: we need the renewed one",
        "Upload Ana's current DEA registration",
    ]


def test_a_staff_end_user_may_not_send_documents(rivera, northwind_staff):
    seu = add_delegate(
        rivera,
        actor=northwind_staff,
        email="front@rivera.test",
        roles={individual(rivera): CMSRole.STAFF_END_USER},
    )
    party = Party(name=seu.name, is_provider=False, roles={individual(rivera).pk: "staff_end_user"})
    credential = requested(rivera, northwind_staff)
    todo = next(t for t in client_todos(rivera, party) if t.credential)
    assert not todo.can_act
    assert "Ask Ana Rivera" in todo.refusal
    with pytest.raises(Exception, match="does not cover"):
        services.credential_upload(
            credential=credential, upload=upload(), actor=seu.user, party=party
        )


def test_a_rejection_reopens_the_to_do_with_its_reason(rivera, northwind_staff):
    credential = requested(rivera, northwind_staff)
    services.credential_upload(
        credential=credential, upload=phone_photo(), actor=rivera.user, party=provider_party(rivera)
    )
    assert Notification.objects.filter(kind="credential.received").exists()
    assert not [t for t in client_todos(rivera, provider_party(rivera)) if not t.claimed]
    services.credential_reject(
        credential=credential, actor=northwind_staff, reason="The photo cuts off the policy dates"
    )
    todo = next(t for t in client_todos(rivera, provider_party(rivera)) if t.credential)
    assert not todo.claimed
    assert any("The photo cuts off the policy dates" in step for step in todo.steps)
    told = Notification.objects.filter(kind="credential.rejected", channel="email").first()
    assert "The photo cuts off the policy dates" in told.body_text


def test_a_rejection_needs_a_reason(rivera, northwind_staff):
    credential = requested(rivera, northwind_staff)
    services.credential_upload(credential=credential, upload=upload(), actor=northwind_staff)
    with pytest.raises(TransitionError, match="Say why"):
        services.credential_reject(credential=credential, actor=northwind_staff, reason=" ")


def test_accepting_needs_the_expiry_of_a_kind_that_expires(rivera, northwind_staff):
    credential = requested(rivera, northwind_staff)
    services.credential_upload(credential=credential, upload=upload(), actor=northwind_staff)
    with pytest.raises(TransitionError, match="expiry date"):
        services.credential_accept(credential=credential, actor=northwind_staff)
    credential.refresh_from_db()
    assert credential.state == Credential.State.RECEIVED


def test_accepting_schedules_the_expiry_reminders_on_the_firms_cadence(rivera, northwind_staff):
    firm = rivera.firm
    credential = requested(rivera, northwind_staff)
    services.credential_upload(
        credential=credential, upload=phone_photo(), actor=rivera.user, party=provider_party(rivera)
    )
    expires = today(firm) + timedelta(days=200)
    services.credential_accept(credential=credential, actor=northwind_staff, expires_on=expires)
    credential.refresh_from_db()
    assert credential.state == Credential.State.ACCEPTED
    assert credential.deadline.astimezone(firm.zone).date() == expires
    reminders = Notification.objects.filter(
        kind="credential.expiry_reminder", channel="email", recipient=rivera.user
    )
    assert sorted(r.step.rsplit("-", 1)[0] for r in reminders) == sorted(
        f"before-{days}-{expires}" for days in (90, 60, 30, 14, 7)
    )
    assert Notification.objects.filter(
        kind="credential.expired", step__startswith=f"expired-{expires}-"
    )
    # the request's own reminders stopped
    assert not Notification.objects.filter(kind="credential.reminder", state="scheduled").exists()
    assert not [t for t in client_todos(rivera, provider_party(rivera)) if t.credential]


def test_a_renewal_replaces_the_old_expirys_reminders(rivera, northwind_staff):
    firm = rivera.firm
    credential = on_file(rivera, northwind_staff, expires_in=12)
    todo = next(t for t in client_todos(rivera, provider_party(rivera)) if t.credential)
    assert todo.title == "Renew: upload your malpractice certificate of insurance"
    assert todo.days_left == 12
    services.credential_upload(
        credential=credential, upload=phone_photo(), actor=rivera.user, party=provider_party(rivera)
    )
    new_expiry = today(firm) + timedelta(days=377)
    services.credential_accept(credential=credential, actor=northwind_staff, expires_on=new_expiry)
    scheduled = Notification.objects.filter(
        subject_id=str(credential.public_id), kind="credential.expiry_alert", state="scheduled"
    )
    assert scheduled
    assert all(str(new_expiry) in row.step for row in scheduled)
    assert credential.files.count() == 2


def test_expiry_reminders_go_out_at_the_firms_hour_across_a_dst_change(rivera, northwind_staff):
    firm = rivera.firm
    type(firm).objects.filter(pk=firm.pk).update(time_zone="America/Chicago")
    rivera = Client.objects.select_related("firm").get(pk=rivera.pk)
    chicago = ZoneInfo("America/Chicago")
    # DST starts on March 14, 2027: the 7-day reminder falls after it, the 14-day before.
    with time_machine.travel(datetime(2026, 12, 1, 15, tzinfo=chicago), tick=False):
        credential = on_file(rivera, northwind_staff, expires_in=0)
        services.credential_request_renewal(credential=credential, actor=northwind_staff)
        services.credential_upload(credential=credential, upload=upload(), actor=northwind_staff)
        services.credential_accept(
            credential=credential, actor=northwind_staff, expires_on=date(2027, 3, 20)
        )
    rows = {
        row.step.rsplit("-", 1)[0]: row.due_at.astimezone(chicago)
        for row in Notification.objects.filter(
            kind="credential.expiry_alert", subject_id=str(credential.public_id), state="scheduled"
        )
    }
    assert rows["before-7-2027-03-20"] == datetime(2027, 3, 13, 9, tzinfo=chicago)
    assert rows["before-14-2027-03-20"] == datetime(2027, 3, 6, 9, tzinfo=chicago)
    assert rows["before-7-2027-03-20"].utcoffset() == timedelta(hours=-6)
    credential.refresh_from_db()
    # the clock ends at 23:59 on the expiry day, in Chicago (CDT by then)
    assert credential.deadline.astimezone(chicago) == datetime(2027, 3, 20, 23, 59, tzinfo=chicago)
    assert credential.deadline.astimezone(chicago).utcoffset() == timedelta(hours=-5)


def test_caqh_is_due_again_120_days_after_the_last_attestation(rivera, northwind_staff):
    firm = rivera.firm
    attested = today(firm) - timedelta(days=111)
    caqh = services.credential_add(
        profile=individual(rivera),
        kind=kind(firm, "caqh"),
        actor=northwind_staff,
        number="12345678",
        issued_on=attested,
    )
    assert caqh.expires_on == attested + timedelta(days=120)
    todo = next(t for t in client_todos(rivera, provider_party(rivera)) if t.credential)
    assert todo.title == "Re-attest your CAQH ProView profile"
    assert todo.days_left == 9
    assert not todo.takes_upload
    assert any("Log in to CAQH ProView (CAQH Provider ID 12345678)" in s for s in todo.steps)
    services.credential_claim_attested(
        credential=caqh, party=provider_party(rivera), actor=rivera.user
    )
    services.credential_accept(credential=caqh, actor=northwind_staff, issued_on=today(firm))
    caqh.refresh_from_db()
    assert caqh.expires_on == today(firm) + timedelta(days=120)


def test_the_caqh_to_do_links_to_proview(as_user, rivera, northwind_staff):
    services.credential_add(
        profile=individual(rivera),
        kind=kind(rivera.firm, "caqh"),
        actor=northwind_staff,
        issued_on=today(rivera.firm) - timedelta(days=100),
    )
    page = as_user(rivera.user).get(reverse("dashboard"), follow=True).content.decode()
    assert 'href="https://proview.caqh.org/"' in page
    assert 'target="_blank"' in page


# --- one notion of a clock --------------------------------------------------------------


def test_an_expired_license_is_the_clients_next_deadline_and_urgent(rivera, northwind_staff):
    firm = rivera.firm
    license_ = on_file(rivera, northwind_staff, "state_license", expires_in=60, state_code="TX")
    Credential.objects.filter(pk=license_.pk).update(expires_on=today(firm) - timedelta(days=7))
    license_.refresh_from_db()
    services._set_clock(license_)
    from workflows.open_steps import refresh_next_deadline

    refresh_next_deadline(Client.objects.filter(pk=rivera.pk))
    rivera.refresh_from_db()
    assert rivera.next_deadline == license_.deadline < timezone.now()
    membership = northwind_staff.memberships.get()
    rows, _ = stuck_report(membership=membership, filters=ReportFilters()).rows()
    assert rows[0]["item_stage"] == "credential"
    assert rows[0]["item_reason"] == "credential_expired"


def test_an_accepted_renewal_leaves_the_stuck_report(rivera, northwind_staff):
    credential = on_file(rivera, northwind_staff, expires_in=10)
    membership = northwind_staff.memberships.get()

    def stuck():
        rows, _ = stuck_report(membership=membership, filters=ReportFilters()).rows()
        return [row for row in rows if row["object_public_id"] == credential.public_id]

    assert stuck()
    services.credential_upload(credential=credential, upload=upload(), actor=northwind_staff)
    services.credential_accept(
        credential=credential,
        actor=northwind_staff,
        expires_on=today(rivera.firm) + timedelta(days=365),
    )
    assert not stuck()


def test_an_overdue_document_request_is_on_the_stuck_report(rivera, northwind_staff):
    credential = requested(rivera, northwind_staff, due_on=today(rivera.firm) + timedelta(days=1))
    membership = northwind_staff.memberships.get()
    rows, _ = stuck_report(membership=membership, filters=ReportFilters()).rows()
    row = next(row for row in rows if row["object_public_id"] == credential.public_id)
    assert row["item_stage"] == "document"
    assert row["item_holder"] == "provider"


def test_the_caseload_row_shows_an_expiring_credential(as_user, rivera, northwind_staff):
    on_file(rivera, northwind_staff, expires_in=12)
    page = as_user(northwind_staff).get(reverse("dashboard")).content.decode()
    assert "Malpractice certificate of insurance" in page
    assert "Expiring" in page


# --- documents only their people can read -----------------------------------------------


@pytest.fixture
def stored_file(rivera, northwind_staff):
    return on_file(rivera, northwind_staff).files.get()


def download(as_user, user, stored_file):
    return as_user(user).get(reverse("credential_file", args=[stored_file.public_id]))


def test_staff_download_is_an_attachment_never_sniffed_and_audited(
    as_user, northwind_staff, stored_file
):
    response = download(as_user, northwind_staff, stored_file)
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment;")
    assert "malpractice-certificate-of-insurance-v1.pdf" in response["Content-Disposition"]
    assert response["X-Content-Type-Options"] == "nosniff"
    assert b"".join(response.streaming_content).startswith(b"%PDF")
    event = AuditEvent.objects.get(verb="credential.file_downloaded")
    assert event.actor == northwind_staff
    assert event.data == {"part": "Malpractice certificate of insurance", "version": 1}
    # on the client's access log, not on its timeline of changes
    assert event.target_id == str(stored_file.credential.profile.client.public_id)
    assert event.client_uuid is None


@pytest.mark.parametrize(
    ("who", "status"),
    [
        ("northwind_admin", 200),
        ("provider", 200),
        ("delegate", 200),  # Access Manager on the profile
        ("bluebird_staff", 404),
        ("bluebird_admin", 404),
    ],
)
def test_download_access_by_persona(request, as_user, stored_file, who, status):
    user = request.getfixturevalue(who)
    assert download(as_user, user, stored_file).status_code == status


def test_a_staff_end_user_delegate_cannot_download(as_user, rivera, northwind_staff, stored_file):
    seu = add_delegate(
        rivera,
        actor=northwind_staff,
        email="front@rivera.test",
        roles={individual(rivera): CMSRole.STAFF_END_USER},
    )
    assert download(as_user, seu.user, stored_file).status_code == 404


def test_anonymous_download_goes_to_login(stored_file):
    from django.test import Client as Browser

    response = Browser().get(reverse("credential_file", args=[stored_file.public_id]))
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_opening_a_credential_is_audited(as_user, northwind_staff, northwind_admin, stored_file):
    credential = stored_file.credential
    page = as_user(northwind_staff).get(reverse("credential_detail", args=[credential.public_id]))
    assert page.status_code == 200
    assert b"Version 1" in page.content
    event = AuditEvent.objects.get(verb="credential.viewed")
    client = credential.profile.client
    assert event.actor == northwind_staff
    assert event.target_id == str(client.public_id)
    log = as_user(northwind_admin).get(reverse("client_access_log", args=[client.public_id]))
    assert b"Opened a credential: Malpractice certificate of insurance" in log.content


def test_another_firms_credential_page_is_404(as_user, bluebird_staff, stored_file):
    url = reverse("credential_detail", args=[stored_file.credential.public_id])
    assert as_user(bluebird_staff).get(url).status_code == 404


# --- the pages ----------------------------------------------------------------------------


def test_the_provider_uploads_from_the_to_do_page(as_user, rivera, northwind_staff):
    credential = requested(rivera, northwind_staff)
    browser = as_user(rivera.user)
    page = browser.get(reverse("dashboard"), follow=True).content.decode()
    assert reverse("todo_upload", args=[credential.public_id]) in page
    assert 'accept="application/pdf,image/jpeg' in page
    response = browser.post(
        reverse("todo_upload", args=[credential.public_id]),
        {"document": phone_photo()},
        follow=True,
    )
    assert b"we have it" in response.content
    credential.refresh_from_db()
    assert credential.state == Credential.State.RECEIVED


def test_a_refused_upload_says_why_and_changes_nothing(as_user, rivera, northwind_staff):
    credential = requested(rivera, northwind_staff)
    response = as_user(rivera.user).post(
        reverse("todo_upload", args=[credential.public_id]),
        {"document": upload(WINDOWS_EXE, "coi.pdf")},
        follow=True,
    )
    assert response.status_code == 200
    assert b"is not a PDF or a photo" in response.content
    credential.refresh_from_db()
    assert credential.state == Credential.State.REQUESTED


def test_staff_request_record_accept_and_reject_from_the_pages(as_user, rivera, northwind_staff):
    browser = as_user(northwind_staff)
    firm = rivera.firm
    url = reverse("credential_create", args=[rivera.public_id, "request"])
    response = browser.post(
        url,
        {
            "kind": str(kind(firm, "state_license").public_id),
            "profile": str(individual(rivera).public_id),
            "state_code": "TX",
            "note": "Your Texas LCSW license",
        },
        follow=True,
    )
    assert b"on their to-dos" in response.content
    credential = Credential.objects.get(state_code="TX")
    services.credential_upload(credential=credential, upload=upload(), actor=northwind_staff)
    action = reverse("credential_action", args=[credential.public_id, "accept"])
    expires = today(firm) + timedelta(days=700)
    response = browser.post(action, {"state_code": "TX", "expires_on": expires}, follow=True)
    assert b"Accepted" in response.content
    credential.refresh_from_db()
    assert credential.state == "accepted"
    assert credential.expires_on == expires
    add = reverse("credential_create", args=[rivera.public_id, "add"])
    response = browser.post(
        add,
        {
            "kind": str(kind(firm, "w9").public_id),
            "profile": str(individual(rivera).public_id),
            "document": upload(),
        },
        follow=True,
    )
    assert b"W-9 recorded on file" in response.content
    page = browser.get(reverse("client_detail", args=[rivera.public_id])).content.decode()
    assert "State license" in page
    assert "W-9" in page
    assert "Does not expire" in page  # the W-9
    assert '1<span class="visually-hidden"> version</span>' in page


def test_junk_in_credential_forms_is_a_message_not_an_error(as_user, rivera, northwind_staff):
    browser = as_user(northwind_staff)
    url = reverse("credential_create", args=[rivera.public_id, "request"])
    response = browser.post(url, {"kind": "junk", "profile": "junk"}, follow=True)
    assert response.status_code == 200
    assert b"Select a valid choice" in response.content
    assert not Credential.objects.exists()
    bad = reverse("credential_create", args=[rivera.public_id, "nonsense"])
    assert browser.post(bad, {}).status_code == 404


@pytest.mark.parametrize("items", [0, 40])
def test_query_budgets_do_not_grow_with_credentials(
    as_user, rivera, northwind_staff, django_assert_num_queries, items
):
    from workflows.forms import US_STATES

    for number in range(items):
        if number % 2:
            requested(rivera, northwind_staff, "state_license", state_code=US_STATES[number])
        else:
            on_file(rivera, northwind_staff, expires_in=10 + number)
    staff, provider = as_user(northwind_staff), as_user(rivera.user)
    client_url = reverse("client_detail", args=[rivera.public_id])
    staff.get(client_url)
    provider.get(reverse("dashboard"))
    # The client page's budget (tests/workflows/test_caseload.py names each query; with no
    # enrollment, their rounds, signers and development requests are not read).
    with django_assert_num_queries(16):
        assert staff.get(client_url).status_code == 200
    # session, user, membership (+firm, second factor, unread count), the provider's
    # clients, profiles+organizations, pending grants, open enrollments (none here: their
    # rounds and requests are not read), credentials (+kinds), delegates, their roles
    with django_assert_num_queries(10):
        assert provider.get(reverse("dashboard")).status_code == 200


def test_every_credential_move_keeps_the_clients_next_deadline(rivera, northwind_staff):
    """Defect found: the credential's clock was set after its move refreshed the client's
    next deadline, so the caseload kept the old one."""
    firm = rivera.firm

    def next_deadline():
        return Client.objects.get(pk=rivera.pk).next_deadline

    credential = requested(rivera, northwind_staff, due_on=today(firm) + timedelta(days=5))
    assert next_deadline() == credential.deadline
    services.credential_upload(credential=credential, upload=upload(), actor=northwind_staff)
    credential.refresh_from_db()
    assert credential.deadline is None
    assert next_deadline().year == 9999
    expires = today(firm) + timedelta(days=40)
    services.credential_accept(credential=credential, actor=northwind_staff, expires_on=expires)
    credential.refresh_from_db()
    assert next_deadline() == credential.deadline
    services.credential_cancel(credential=credential, actor=northwind_staff)
    assert next_deadline().year == 9999


def test_an_upload_round_asks_for_its_signed_statement_like_any_document(rivera, northwind_staff):
    from workflows import services as workflow_services

    enrollment = workflow_services.enrollment_create(
        profile=individual(rivera), kind="initial", actor=northwind_staff
    )
    signature_round = workflow_services.round_open(
        enrollment=enrollment, actor=northwind_staff, method="upload"
    )
    statement = Credential.objects.get(signature_round=signature_round)
    assert statement.kind.code == "certification_statement"
    zone = rivera.firm.zone
    assert statement.due_on == signature_round.deadline.astimezone(zone).date()
    todo = next(t for t in client_todos(rivera, provider_party(rivera)) if t.credential)
    assert todo.title == "Upload your signed certification statement"
    assert todo.takes_upload
    services.credential_upload(
        credential=statement, upload=phone_photo(), actor=rivera.user, party=provider_party(rivera)
    )
    services.credential_accept(credential=statement, actor=northwind_staff)
    statement.refresh_from_db()
    assert statement.state == Credential.State.ACCEPTED
    assert statement.deadline is None


def test_a_statement_still_owed_is_no_longer_needed_when_its_round_closes(rivera, northwind_staff):
    from workflows import services as workflow_services

    enrollment = workflow_services.enrollment_create(
        profile=individual(rivera), kind="initial", actor=northwind_staff
    )
    signature_round = workflow_services.round_open(
        enrollment=enrollment, actor=northwind_staff, method="upload"
    )
    workflow_services.round_confirm(signature_round=signature_round, actor=northwind_staff)
    statement = Credential.objects.get(signature_round=signature_round)
    assert statement.state == Credential.State.CANCELLED
    assert not [t for t in client_todos(rivera, provider_party(rivera)) if t.credential]


def test_the_staff_digest_lists_credentials_and_revalidations(rivera, northwind_staff):
    from reports.digest import digest_items
    from workflows.revalidation import revalidation_set_due

    Client.objects.filter(pk=rivera.pk).update(assigned_staff=northwind_staff)
    firm = rivera.firm
    expired = on_file(rivera, northwind_staff, "state_license", expires_in=20, state_code="TX")
    sent = requested(rivera, northwind_staff, "dea", state_code="TX")
    services.credential_upload(credential=sent, upload=upload(), actor=northwind_staff)
    revalidation_set_due(
        profile=individual(rivera), due_on=today(firm) + timedelta(days=45), actor=northwind_staff
    )
    lines = digest_items(firm, northwind_staff, timezone.now())[rivera.display_name]
    day = (today(firm) + timedelta(days=20)).strftime("%b %-d")
    assert f"Expires {day}: {expired} (Individual profile)" in lines
    assert f"Review: {sent} sent (Individual profile)" in lines
    assert any(line.startswith("Revalidation due at CMS") for line in lines)


def test_an_upload_round_recorded_late_keeps_its_statement_overdue(rivera, northwind_staff):
    """Defect found (browser suite): an upload round submitted 21 days ago could not be
    recorded, because its statement's due date (the round's) had passed."""
    from workflows import services as workflow_services

    enrollment = workflow_services.enrollment_create(
        profile=individual(rivera), kind="initial", actor=northwind_staff
    )
    signature_round = workflow_services.round_open(
        enrollment=enrollment,
        actor=northwind_staff,
        method="upload",
        submitted_on=today(rivera.firm) - timedelta(days=21),
    )
    statement = Credential.objects.get(signature_round=signature_round)
    assert statement.deadline < timezone.now()
    assert statement.state == Credential.State.REQUESTED


def test_an_expired_credential_says_so_on_the_renewal_to_do(rivera, northwind_staff):
    license_ = on_file(rivera, northwind_staff, "state_license", expires_in=30, state_code="TX")
    Credential.objects.filter(pk=license_.pk).update(
        expires_on=today(rivera.firm) - timedelta(days=7)
    )
    license_.refresh_from_db()
    services._set_clock(license_)
    todo = next(t for t in client_todos(rivera, provider_party(rivera)) if t.credential)
    assert todo.days_left == -7
    assert "Your state license (TX) has expired: we need the renewed one now" in todo.steps
    assert not any("expires soon" in step for step in todo.steps)


# --- the firm's catalogue -------------------------------------------------------------------


def test_an_admin_adds_a_kind_and_takes_one_out_of_the_choices(
    as_user, rivera, northwind_admin, northwind_staff
):
    browser = as_user(northwind_admin)
    response = browser.post(
        reverse("credential_kinds"),
        {"name": "Hospital privileges letter", "issuer_label": "Hospital", "expires": "on"},
        follow=True,
    )
    assert "“Hospital privileges letter” added" in response.content.decode()
    again = browser.post(
        reverse("credential_kinds"), {"name": "hospital privileges  letter"}, follow=True
    )
    assert "already in your catalogue" in again.content.decode()
    privileges = rivera.firm.credential_kinds.get(name="Hospital privileges letter")
    assert privileges.expires
    assert privileges.issuer_label == "Hospital"
    cv = on_file(rivera, northwind_staff, "cv")
    browser.post(reverse("credential_kind_active", args=[cv.kind.public_id, "off"]))
    names = {kind.name for kind in services.catalogue(rivera.firm)}
    assert "CV" not in names
    assert "Hospital privileges letter" in names
    cv.refresh_from_db()
    assert cv.state == Credential.State.ACCEPTED  # what is on file stays
    page = as_user(northwind_staff).get(reverse("client_detail", args=[rivera.public_id]))
    assert '<option value="' + str(cv.kind.public_id) not in page.content.decode()


def test_another_firms_kind_cannot_be_touched(as_user, northwind, bluebird_admin):
    kind = services.kind_for(northwind, "cv")
    url = reverse("credential_kind_active", args=[kind.public_id, "off"])
    assert as_user(bluebird_admin).post(url).status_code == 404
    kind.refresh_from_db()
    assert kind.is_active


def test_a_waiting_item_says_since_when_the_firm_checks_it(as_user, rivera, northwind_staff):
    credential = requested(rivera, northwind_staff)
    services.credential_upload(
        credential=credential, upload=phone_photo(), actor=rivera.user, party=provider_party(rivera)
    )
    page = as_user(rivera.user).get(reverse("dashboard")).content.decode()
    day = timezone.now().astimezone(rivera.firm.zone)
    assert "we're checking it, since <time datetime=" in page
    assert f"{day:%b} {day.day}</time>" in page


def test_an_acronym_keeps_its_capitals_in_a_sentence(rivera, northwind_staff):
    """Defect found reading the demo's emails: "their dEA registration", "the w-9"."""
    dea = requested(rivera, northwind_staff, "dea", state_code="TX")
    assert dea.what == "DEA registration (TX)"
    assert services.kind_for(rivera.firm, "w9").in_sentence == "W-9"
    assert services.kind_for(rivera.firm, "cv").in_sentence == "CV"
    assert services.kind_for(rivera.firm, "state_license").in_sentence == "state license"
    with pytest.raises(TransitionError, match="Upload the W-9"):
        services.credential_add(
            profile=individual(rivera),
            kind=services.kind_for(rivera.firm, "w9"),
            actor=northwind_staff,
        )
