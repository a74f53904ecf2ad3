"""The calendar feed: each person's deadlines as iCalendar, behind a secret address.

Now is noon in Chicago on Wednesday 2026-10-14 (tests/workflows/conftest.py), two and a half
weeks before DST ends there (Sunday 2026-11-01).
"""

from datetime import UTC, date, timedelta
from types import SimpleNamespace

import icalendar
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from clients.models import Client, Profile
from portal.models import AuditEvent, Membership
from tests.clients.factories import make_client
from tests.portal.factories import MembershipFactory
from tests.workflows.test_caseload import bulk_clients
from workflows import calendar, services
from workflows.deadlines import end_of_day
from workflows.models import (
    AccessGrant,
    CalendarFeed,
    Credential,
    CredentialKind,
    DevelopmentRequest,
    SignatureRound,
)

pytestmark = pytest.mark.django_db


def membership_of(user) -> Membership:
    return Membership.objects.select_related("firm", "user").get(user=user)


def subscribe(user) -> str:
    feed, _created = calendar.calendar_feed_rotate(membership=membership_of(user))
    return feed.token


def fetch(as_user, token, user=None):
    return as_user(user).get(reverse("calendar_feed", kwargs={"token": token}))


def events(as_user, token) -> dict[str, tuple[str, date]]:
    """{UID: (SUMMARY, the all-day date)} of the feed, parsed back as a calendar app would."""
    response = fetch(as_user, token)
    assert response.status_code == 200
    parsed = icalendar.Calendar.from_ical(response.content)
    return {
        str(event["uid"]): (str(event["summary"]), event.decoded("dtstart"))
        for event in parsed.walk("VEVENT")
    }


def summaries(as_user, token) -> set[str]:
    return {summary for summary, _day in events(as_user, token).values()}


def credential_kind(firm, code, name, **fields) -> CredentialKind:
    kind, _created = CredentialKind.objects.get_or_create(
        firm=firm, name=name, defaults={"code": code, **fields}
    )
    return kind


@pytest.fixture
def clocks(letters_now, chicago_firm, rivera, northwind_staff):
    """One open clock of every kind on Rivera's two profiles."""
    firm, staff = chicago_firm, northwind_staff
    individual = rivera.profiles.get(kind=Profile.Kind.INDIVIDUAL)
    organizational = rivera.profiles.get(kind=Profile.Kind.ORGANIZATIONAL)
    grant = services.grant_create(profile=individual, method="connection_request", actor=staff)
    initial = services.enrollment_create(profile=individual, kind="initial", actor=staff)
    signature_round = services.round_open(enrollment=initial, actor=staff)
    revalidation = services.enrollment_create(profile=individual, kind="revalidation", actor=staff)
    type(revalidation).objects.filter(pk=revalidation.pk).update(
        due_on=date(2027, 1, 31), deadline=end_of_day(firm, date(2027, 1, 31))
    )
    # A revalidation's due date runs while it is prepared (submitted, it is met); the
    # development request is on a change of information with the contractor.
    change = services.enrollment_create(profile=individual, kind="change", actor=staff)
    services.enrollment_change_state(enrollment=change, to="submitted", actor=staff)
    development = services.development_open(
        enrollment=change,
        asked="Copy of the diagnosis codes billed",
        holder="provider",
        actor=staff,
        due_on=date(2026, 11, 13),
    )
    denied = services.enrollment_create(profile=organizational, kind="initial", actor=staff)
    services.enrollment_change_state(enrollment=denied, to="submitted", actor=staff)
    services.enrollment_record_outcome(
        enrollment=denied, outcome="denied", actor=staff, reason="Missing practice location"
    )
    coi = Credential.objects.create(
        firm=firm,
        profile=individual,
        kind=credential_kind(
            firm, "malpractice", "Malpractice certificate of insurance", expires=True
        ),
        state=Credential.State.ACCEPTED,
        number="POL-778899",
        expires_on=date(2027, 3, 1),
        deadline=end_of_day(firm, date(2027, 3, 1)),
    )
    license_asked = Credential.objects.create(
        firm=firm,
        profile=individual,
        kind=credential_kind(firm, "state_license", "State license", has_state=True, expires=True),
        state=Credential.State.REQUESTED,
        state_code="TX",
        request_note="The renewed license after the board's probation review",
        due_on=date(2026, 10, 28),
        deadline=end_of_day(firm, date(2026, 10, 28)),
    )
    return SimpleNamespace(
        grant=grant,
        round=signature_round,
        revalidation=revalidation,
        development=development,
        denied=denied,
        coi=coi,
        license=license_asked,
    )


# --- what each person's feed holds ------------------------------------------------------


def test_staff_feed_has_every_kind_of_clock_of_their_caseload(as_user, clocks, northwind_staff):
    got = events(as_user, subscribe(northwind_staff))
    assert got == {
        f"grant-{clocks.grant.public_id}@credportal": (
            "Rivera: connection request expires",
            date(2026, 11, 13),
        ),
        f"round-{clocks.round.public_id}@credportal": (
            "Rivera: signature due (round 1)",
            date(2026, 11, 3),
        ),
        f"development-{clocks.development.public_id}@credportal": (
            "Rivera: development response due",
            date(2026, 11, 13),
        ),
        f"revalidation-{clocks.revalidation.public_id}@credportal": (
            "Rivera: revalidation due",
            date(2027, 1, 31),
        ),
        f"reconsideration-{clocks.denied.public_id}@credportal": (
            "Rivera: reconsideration window closes",
            date(2026, 12, 13),
        ),
        f"credential-{clocks.coi.public_id}@credportal": (
            "Rivera: malpractice certificate of insurance expires",
            date(2027, 3, 1),
        ),
        f"credential-{clocks.license.public_id}@credportal": (
            "Rivera: state license (TX) due",
            date(2026, 10, 28),
        ),
    }


def test_staff_feed_leaves_out_colleagues_and_other_firms_clients(
    as_user, clocks, northwind, northwind_staff, northwind_admin, bluebird_staff
):
    colleague = MembershipFactory(firm=northwind).user
    theirs = make_client(
        northwind, actor=northwind_admin, assigned_staff=colleague, last_name="Okafor"
    )
    services.grant_create(
        profile=theirs.profiles.get(), method="connection_request", actor=northwind_admin
    )
    other_firm = make_client(
        bluebird_staff.memberships.get().firm, actor=bluebird_staff, last_name="Lindqvist"
    )
    services.grant_create(
        profile=other_firm.profiles.get(), method="connection_request", actor=bluebird_staff
    )
    got = summaries(as_user, subscribe(northwind_staff))
    assert "Rivera: connection request expires" in got
    assert not any(s.startswith(("Okafor", "Lindqvist")) for s in got)
    # Bluebird's own staff sees Bluebird's client and nothing of Northwind's.
    assert summaries(as_user, subscribe(bluebird_staff)) == {
        "Lindqvist: connection request expires"
    }


def test_admin_feed_adds_the_unassigned_clients_not_a_colleagues(
    as_user, letters_now, northwind, northwind_admin, northwind_staff
):
    own = make_client(northwind, actor=northwind_admin, last_name="Adeyemi")
    unassigned = make_client(northwind, actor=northwind_admin, last_name="Unassigned")
    Client.objects.filter(pk=unassigned.pk).update(assigned_staff=None)
    colleagues = make_client(northwind, actor=northwind_staff, last_name="Colleague")
    for client in (own, unassigned, colleagues):
        services.grant_create(
            profile=client.profiles.get(), method="connection_request", actor=northwind_admin
        )
    got = summaries(as_user, subscribe(northwind_admin))
    assert got == {
        "Adeyemi: connection request expires",
        "Unassigned: connection request expires",
    }


def test_provider_and_delegate_feeds_hold_their_todos(as_user, clocks, provider, delegate):
    expected = {
        f"grant-{clocks.grant.public_id}@credportal": "Rivera: connection request expires",
        f"signer-{clocks.round.signers.get().public_id}@credportal": (
            "Rivera: signature due (round 1)"
        ),
        f"development-{clocks.development.public_id}@credportal": (
            "Rivera: development response due"
        ),
        f"credential-{clocks.license.public_id}@credportal": "Rivera: state license (TX) due",
    }
    for person in (provider, delegate):
        got = events(as_user, subscribe(person))
        # The firm's clocks (a revalidation, a reconsideration window, an insurance expiry
        # months away) are not the provider's to-dos.
        assert {uid: summary for uid, (summary, _day) in got.items()} == expected


def test_a_todo_the_provider_says_is_done_leaves_their_calendar(as_user, clocks, rivera, provider):
    from workflows.todos import party_for

    token = subscribe(provider)
    services.grant_claim_done(grant=clocks.grant, party=party_for(provider, rivera), actor=provider)
    assert "Rivera: connection request expires" not in summaries(as_user, token)


def test_the_text_names_the_client_and_step_only(
    as_user, clocks, rivera, northwind_staff, provider
):
    for person in (northwind_staff, provider):
        body = fetch(as_user, subscribe(person)).content.decode()
        for secret in (
            rivera.npi,
            rivera.email,
            "Ana",
            clocks.development.asked,
            "Missing practice location",
            clocks.license.request_note[:30],
            clocks.coi.number,
        ):
            assert secret not in body, secret


def test_events_link_to_the_portal_page_and_name_the_profile(
    as_user, clocks, rivera, northwind_staff, settings
):
    settings.SITE_URL = "https://portal.example.test"
    parsed = icalendar.Calendar.from_ical(fetch(as_user, subscribe(northwind_staff)).content)
    assert str(parsed["X-WR-CALNAME"]) == "Northwind Credentialing deadlines"
    assert str(parsed["X-WR-TIMEZONE"]) == "America/Chicago"
    assert str(parsed["VERSION"]) == "2.0"
    event = next(e for e in parsed.walk("VEVENT") if str(e["uid"]).startswith("grant-"))
    link = f"https://portal.example.test/clients/{rivera.public_id}/"
    assert str(event["description"]) == f"Individual profile\n{link}"
    assert str(event["url"]) == link
    assert event.decoded("dtend") == event.decoded("dtstart") + timedelta(days=1)
    assert "DTSTAMP" in event


# --- stable across fetches, dates in the firm's zone ------------------------------------


def test_uids_are_stable_and_a_moved_deadline_keeps_its_uid(as_user, clocks, northwind_staff):
    token = subscribe(northwind_staff)
    first = events(as_user, token)
    assert events(as_user, token) == first
    DevelopmentRequest.objects.filter(pk=clocks.development.pk).update(
        deadline=end_of_day(clocks.development.firm, date(2026, 11, 20))
    )
    moved = events(as_user, token)
    uid = f"development-{clocks.development.public_id}@credportal"
    assert moved[uid] == ("Rivera: development response due", date(2026, 11, 20))
    assert moved.keys() == first.keys()


def test_all_day_date_is_the_firms_date_on_the_day_dst_ends(
    as_user, clocks, chicago_firm, northwind_staff
):
    # 23:59 in Chicago on Sunday 2026-11-01 (CST again, UTC-6) is 05:59 UTC on Monday.
    deadline = end_of_day(chicago_firm, date(2026, 11, 1))
    assert deadline.astimezone(UTC).date() == date(2026, 11, 2)
    SignatureRound.objects.filter(pk=clocks.round.pk).update(deadline=deadline)
    got = events(as_user, subscribe(northwind_staff))
    assert got[f"round-{clocks.round.public_id}@credportal"][1] == date(2026, 11, 1)


def test_only_the_window_and_the_soonest_events_are_sent(
    as_user, clocks, chicago_firm, northwind_staff, monkeypatch
):
    firm = chicago_firm
    AccessGrant.objects.filter(pk=clocks.grant.pk).update(
        deadline=end_of_day(firm, date(2026, 9, 13))  # 31 days overdue: out
    )
    Credential.objects.filter(pk=clocks.coi.pk).update(
        deadline=end_of_day(firm, date(2027, 11, 19))  # 401 days ahead: out
    )
    Credential.objects.filter(pk=clocks.license.pk).update(
        deadline=end_of_day(firm, date(2026, 9, 14))  # 30 days overdue: in
    )
    token = subscribe(northwind_staff)
    got = events(as_user, token)
    assert f"grant-{clocks.grant.public_id}@credportal" not in got
    assert f"credential-{clocks.coi.public_id}@credportal" not in got
    assert f"credential-{clocks.license.public_id}@credportal" in got
    monkeypatch.setattr(calendar, "MAX_EVENTS", 2)
    soonest = events(as_user, token)
    assert sorted(day for _summary, day in soonest.values()) == [
        date(2026, 9, 14),
        date(2026, 11, 3),
    ]


# --- the address ------------------------------------------------------------------------


def test_feed_answers_as_a_private_calendar(as_user, clocks, northwind_staff):
    response = fetch(as_user, subscribe(northwind_staff))
    assert response["Content-Type"] == "text/calendar; charset=utf-8"
    assert "no-store" in response["Cache-Control"]


def test_rotating_kills_the_old_address_and_the_new_one_works(
    as_user, letters_now, northwind_staff
):
    old = subscribe(northwind_staff)
    response = as_user(northwind_staff).post(reverse("calendar_feed_rotate"))
    assert response.status_code == 302
    new = CalendarFeed.objects.get(user=northwind_staff).token
    assert new != old
    assert fetch(as_user, old).status_code == 404
    assert fetch(as_user, new).status_code == 200
    assert AuditEvent.objects.filter(verb="calendar.rotated", actor=northwind_staff).exists()


def test_a_turned_off_feed_is_404(as_user, letters_now, northwind_staff):
    token = subscribe(northwind_staff)
    assert as_user(northwind_staff).post(reverse("calendar_feed_off")).status_code == 302
    assert not CalendarFeed.objects.filter(user=northwind_staff).exists()
    assert fetch(as_user, token).status_code == 404
    assert AuditEvent.objects.filter(verb="calendar.turned_off", actor=northwind_staff).exists()


def test_an_unknown_address_or_a_departed_member_is_404(as_user, letters_now, northwind_staff):
    token = subscribe(northwind_staff)
    assert fetch(as_user, "x" * 43).status_code == 404
    assert fetch(as_user, "short").status_code == 404
    Membership.objects.filter(user=northwind_staff).update(is_active=False)
    assert fetch(as_user, token).status_code == 404


def test_every_fetch_is_in_the_audit_trail(as_user, letters_now, northwind, northwind_staff):
    token = subscribe(northwind_staff)
    fetch(as_user, token)
    fetch(as_user, token)
    fetched = AuditEvent.objects.filter(verb="calendar.fetched")
    assert fetched.count() == 2
    assert {(e.actor, e.firm) for e in fetched} == {(northwind_staff, northwind)}


def test_security_page_shows_the_address_and_its_buttons(
    as_user, letters_now, northwind_staff, settings
):
    settings.SITE_URL = "https://portal.example.test"
    page = as_user(northwind_staff).get(reverse("mfa_index")).content.decode()
    assert "Authenticator App" in page  # allauth's page is still there
    assert "Create calendar address" in page
    token = subscribe(northwind_staff)
    page = as_user(northwind_staff).get(reverse("mfa_index")).content.decode()
    assert f"webcal://portal.example.test/calendar/{token}.ics" in page
    assert f"https://portal.example.test/calendar/{token}.ics" in page
    assert reverse("calendar_feed_rotate") in page
    assert reverse("calendar_feed_off") in page
    assert "csrfmiddlewaretoken" in page


def test_security_page_has_no_calendar_for_someone_outside_a_firm(as_user, operator):
    page = as_user(operator).get(reverse("mfa_index")).content.decode()
    assert "Authenticator App" in page
    assert "calendar" not in page.lower()


# --- queries ----------------------------------------------------------------------------


def feed_queries(user) -> int:
    membership = membership_of(user)
    with CaptureQueriesContext(connection) as queries:
        calendar.feed_for(membership)
    return len(queries)


def test_staff_feed_queries_do_not_grow_with_the_caseload(
    clocks, chicago_firm, northwind_staff, django_assert_num_queries
):
    # One query per kind of clock: access grants, signature rounds, development requests,
    # reconsideration windows, revalidations, credentials (each with its client, profile
    # and organization joined).
    membership = membership_of(northwind_staff)
    with django_assert_num_queries(6):
        calendar.feed_for(membership)
    bulk_clients(chicago_firm, northwind_staff, 50)
    with django_assert_num_queries(6):
        body = calendar.feed_for(membership)
    assert len(icalendar.Calendar.from_ical(body).walk("VEVENT")) == 57


def test_provider_feed_queries_do_not_grow_with_the_todos(
    letters_now, chicago_firm, rivera, northwind_staff, provider
):
    def sign_and_connect(profile):
        services.grant_create(profile=profile, method="connection_request", actor=northwind_staff)
        enrollment = services.enrollment_create(
            profile=profile, kind="initial", actor=northwind_staff
        )
        services.round_open(enrollment=enrollment, actor=northwind_staff)

    sign_and_connect(rivera.profiles.get(kind=Profile.Kind.INDIVIDUAL))
    # client (+firm, staff), profiles+organizations, pending grants, open enrollments, open
    # rounds, signers, development requests, credentials, delegates, delegate roles
    assert feed_queries(provider) == 10
    sign_and_connect(rivera.profiles.get(kind=Profile.Kind.ORGANIZATIONAL))
    assert feed_queries(provider) == 10


def test_feed_request_query_budget(as_user, clocks, northwind_staff, django_assert_num_queries):
    token = subscribe(northwind_staff)
    # the feed by its token, the owner's membership (+firm, user), six clock queries, the
    # audit event
    with django_assert_num_queries(9):
        assert fetch(as_user, token).status_code == 200
