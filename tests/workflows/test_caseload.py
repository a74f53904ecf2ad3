"""The staff caseload and the client page: scope, filters, search, pagination, query budgets."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from clients.models import Client, Profile
from portal.npi import npi_with_check_digit
from tests.clients.factories import make_client
from workflows import services
from workflows.models import AccessGrant
from workflows.selectors import refresh_next_deadline

pytestmark = pytest.mark.django_db


def bulk_clients(firm, staff, count, start=500_000_000):
    """Many clients fast: each with an individual profile and a pending connection request."""
    now = timezone.now()
    clients = Client.objects.bulk_create(
        [
            Client(
                firm=firm,
                first_name="Bulk",
                last_name=f"Client{index:04d}",
                npi=npi_with_check_digit(str(start + index)),
                email=f"bulk{index}@clinic.test",
                assigned_staff=staff,
            )
            for index in range(count)
        ]
    )
    profiles = Profile.objects.bulk_create(
        [Profile(firm=firm, client=client, kind=Profile.Kind.INDIVIDUAL) for client in clients]
    )
    AccessGrant.objects.bulk_create(
        [
            AccessGrant(
                firm=firm,
                profile=profile,
                state=AccessGrant.State.AWAITING_PROVIDER,
                sent_at=now - timedelta(days=index % 30),
                deadline=now + timedelta(days=30 - index % 30, minutes=index),
            )
            for index, profile in enumerate(profiles)
        ]
    )
    refresh_next_deadline(Client.objects.filter(pk__in=[c.pk for c in clients]))
    return clients


def test_staff_see_their_own_caseload(as_user, northwind, northwind_staff, northwind_admin):
    mine = make_client(northwind, actor=northwind_staff, last_name="Mine")
    theirs = make_client(northwind, actor=northwind_admin, last_name="Theirs")
    page = as_user(northwind_staff).get(reverse("dashboard")).content.decode()
    assert mine.last_name in page
    assert theirs.last_name not in page
    admin_page = as_user(northwind_admin).get(reverse("dashboard")).content.decode()
    assert mine.last_name in admin_page
    assert theirs.last_name in admin_page


def test_another_firms_clients_never_appear(
    as_user, northwind, bluebird, northwind_admin, bluebird_staff
):
    make_client(bluebird, actor=bluebird_staff, last_name="Bluebirdonly")
    page = as_user(northwind_admin).get(reverse("dashboard") + "?q=Bluebirdonly").content.decode()
    assert "No clients match these filters" in page


def test_search_by_name_npi_and_organization(as_user, northwind_admin, rivera):
    client = as_user(northwind_admin)
    for term in ("Rivera", rivera.npi, "Therapy PLLC"):
        assert "Ana Rivera" in client.get(reverse("dashboard"), {"q": term}).content.decode(), term
    assert "Ana Rivera" not in client.get(reverse("dashboard"), {"q": "Nobody"}).content.decode()


def test_most_urgent_first_and_filters(as_user, northwind, northwind_admin, northwind_staff):
    late = make_client(northwind, actor=northwind_staff, last_name="Later")
    soon = make_client(northwind, actor=northwind_staff, last_name="Sooner")
    make_client(northwind, actor=northwind_staff, last_name="Idle")
    services.grant_create(
        profile=late.profiles.get(), method="connection_request", actor=northwind_staff
    )
    with __import__("time_machine").travel(timezone.now() - timedelta(days=25)):
        services.grant_create(
            profile=soon.profiles.get(), method="connection_request", actor=northwind_staff
        )
    client = as_user(northwind_admin)
    page = client.get(reverse("dashboard")).content.decode()
    assert page.index("Sooner") < page.index("Later") < page.index("Idle")
    due = client.get(reverse("dashboard"), {"due_within": "7"}).content.decode()
    assert "Sooner" in due
    assert "Later" not in due
    waiting = client.get(reverse("dashboard"), {"holder": "provider"}).content.decode()
    assert "Sooner" in waiting
    assert "Idle" not in waiting
    stage = client.get(reverse("dashboard"), {"stage": "access_pending"}).content.decode()
    assert "Idle" not in stage


def test_keyset_pagination_walks_every_client_once(
    as_user, northwind, northwind_admin, northwind_staff
):
    import re

    bulk_clients(northwind, northwind_staff, 60)
    client = as_user(northwind_admin)
    seen, url, pages = [], reverse("dashboard"), 0
    while url and pages < 10:
        page = client.get(url).content.decode()
        seen += re.findall(r"Bulk Client(\d{4})", page)
        found = re.search(r'href="\?([^"]*after=[^"]+)">Next page', page)
        url = reverse("dashboard") + "?" + found.group(1).replace("&amp;", "&") if found else None
        pages += 1
    assert pages == 3
    assert sorted(seen) == [f"{i:04d}" for i in range(60)]


def test_a_bad_cursor_or_filter_is_ignored_not_an_error(as_user, northwind_admin):
    response = as_user(northwind_admin).get(
        reverse("dashboard"), {"after": "%%%", "due_within": "soon", "stage": "nope"}
    )
    assert response.status_code == 200


@pytest.mark.parametrize("size", [10, 500])
def test_caseload_query_budget_does_not_grow(
    as_user, northwind, northwind_admin, django_assert_num_queries, size
):
    bulk_clients(northwind, northwind_admin, size)
    client = as_user(northwind_admin)
    client.get(reverse("dashboard"))  # warm the session
    # session, user, membership (+firm, second factor, unread count), clients page (with
    # the deadline subqueries), profiles+organizations, live grants, open enrollments,
    # open rounds, live credentials (+kinds), the staff list for the filter, the result count
    with django_assert_num_queries(10):
        assert client.get(reverse("dashboard")).status_code == 200


@pytest.mark.parametrize("grants", [1, 20])
def test_client_page_query_budget_does_not_grow(
    as_user, northwind_staff, rivera, django_assert_num_queries, grants
):
    profile = rivera.profiles.get(kind=Profile.Kind.INDIVIDUAL)
    staff = northwind_staff
    for _ in range(grants):
        grant = services.grant_create(profile=profile, method="connection_request", actor=staff)
        services.grant_record_rejected(grant=grant, actor=staff)
    enrollment = services.enrollment_create(profile=profile, kind="initial", actor=staff)
    services.round_open(enrollment=enrollment, actor=staff)
    in_development = services.enrollment_create(profile=profile, kind="change", actor=staff)
    services.enrollment_change_state(enrollment=in_development, to="submitted", actor=staff)
    for number in range(grants):  # as many development requests, some the provider's
        services.development_open(
            enrollment=in_development,
            asked=f"Document {number}",
            holder="provider" if number % 2 else "firm",
            actor=staff,
        )
    client = as_user(northwind_staff)
    client.get(reverse("client_detail", args=[rivera.public_id]))
    # session, user, membership (+firm, second factor, unread count), client (+firm, staff,
    # user), profiles+organizations, their officials, grants, enrollments+assignee, rounds,
    # their signers, development requests, credentials (+kinds, file counts), delegates,
    # delegate roles+profiles, timeline+actors, staff choices, the firm's credential
    # catalogue, and the audited read
    with django_assert_num_queries(18):
        assert client.get(reverse("client_detail", args=[rivera.public_id])).status_code == 200


def test_client_page_shows_profiles_and_connection_count(as_user, northwind_staff, rivera):
    profile = rivera.profiles.get(kind=Profile.Kind.INDIVIDUAL)
    grant = services.grant_create(
        profile=profile, method="connection_request", actor=northwind_staff
    )
    services.grant_mark_active(grant=grant, actor=northwind_staff)
    page = (
        as_user(northwind_staff)
        .get(reverse("client_detail", args=[rivera.public_id]))
        .content.decode()
    )
    assert "1 of 2 profiles connected" in page
    assert "Rivera Therapy PLLC" in page
    assert "confirmed the access is active" in page  # the timeline, in sentences


def test_the_caseload_says_how_many_clients_match(as_user, northwind, northwind_admin):
    bulk_clients(northwind, northwind_admin, 60)
    page = as_user(northwind_admin).get(reverse("dashboard")).content.decode()
    assert "60 clients, most urgent first, 25 on this page" in page
    page = as_user(northwind_admin).get(reverse("dashboard"), {"q": "nobody"}).content.decode()
    assert "0 clients match these filters" in page


def test_destructive_actions_say_what_will_happen_before_they_happen(
    as_user, northwind_staff, rivera
):
    """Issue 13: cancelling a round, recording a request expired or rejected, removing a
    delegate ask first, with what will happen; a plain HTML <details>, no script needed."""
    profile = rivera.profiles.get(kind=Profile.Kind.INDIVIDUAL)
    services.grant_create(profile=profile, method="connection_request", actor=northwind_staff)
    enrollment = services.enrollment_create(profile=profile, kind="initial", actor=northwind_staff)
    services.round_open(enrollment=enrollment, actor=northwind_staff)
    page = as_user(northwind_staff).get(reverse("client_detail", args=[rivera.public_id]))
    text = page.content.decode()
    for label, confirm in [
        ("Cancel round…", "Yes, cancel the round"),
        ("Record expired…", "Yes, record it expired"),
        ("Record rejected…", "Yes, record it rejected"),
        ("Remove…", "Yes, remove"),
    ]:
        at = text.index(f'<summary class="button button-small button-danger">{label}</summary>')
        assert confirm in text[at : at + 1200], label
    assert "a new round starts a new 20-day clock" in text
