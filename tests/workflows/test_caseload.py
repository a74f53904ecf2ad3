"""The staff caseload and the client page: scope, filters, search, pagination, query budgets."""

import re
from datetime import timedelta

import pytest
import time_machine
from django.http import QueryDict
from django.urls import reverse
from django.utils import timezone

from clients.models import Client, Profile
from portal.npi import npi_with_check_digit
from tests.clients.factories import make_client
from workflows import services
from workflows.models import AccessGrant
from workflows.open_steps import refresh_next_deadline

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


def names_on(page: str) -> list[str]:
    """The client names of a caseload page, in the order shown."""
    return re.findall(r"<strong>([^<]+)</strong></a><br>", page)


def surnames_on(page: str) -> list[str]:
    """ "Pat Soon, MD" -> "Soon", in the order shown."""
    return [name.split(",")[0].split()[-1] for name in names_on(page)]


def test_numbered_pages_walk_every_client_once(
    as_user, northwind, northwind_admin, northwind_staff
):
    bulk_clients(northwind, northwind_staff, 60)
    client = as_user(northwind_admin)
    seen, url, pages = [], reverse("dashboard") + "?sort=name", 0
    while url and pages < 10:
        page = client.get(url).content.decode()
        pages += 1
        assert f"Page {pages} of 3." in page
        assert re.search(
            rf'aria-current="page"><span class="visually-hidden">Page </span>{pages}<', page
        )
        seen += re.findall(r"Bulk Client(\d{4})", page)
        found = re.search(r'rel="next" href="\?([^"]+)"', page)
        url = reverse("dashboard") + "?" + found.group(1).replace("&amp;", "&") if found else None
    assert pages == 3
    assert seen == [f"{i:04d}" for i in range(60)]  # by name, each once


def test_page_links_keep_the_filters_and_the_sort(as_user, northwind, northwind_admin):
    bulk_clients(northwind, northwind_admin, 60)
    page = (
        as_user(northwind_admin)
        .get(reverse("dashboard"), {"q": "Bulk", "sort": "-name", "page": "2"})
        .content.decode()
    )
    links = re.findall(r'href="\?([^"]*page=\d+)"', page)
    assert links
    for link in links:
        query = QueryDict(link.replace("&amp;", "&"))
        assert (query["q"], query["sort"]) == ("Bulk", "-name"), link
    assert {QueryDict(link.replace("&amp;", "&"))["page"] for link in links} == {"1", "2", "3"}
    assert names_on(page)[0] == "Bulk Client0034"  # Z to A: 59..35 on page 1


def test_links_carry_the_values_understood_not_a_junk_one(as_user, northwind, northwind_admin):
    bulk_clients(northwind, northwind_admin, 30)
    page = (
        as_user(northwind_admin)
        .get(reverse("dashboard"), {"sort": "junk", "stage": "nope", "q": "Bulk", "page": "2"})
        .content.decode()
    )
    links = [
        QueryDict(link.replace("&amp;", "&"))
        for link in re.findall(r'href="\?([^"]*)"', page)
        if "page=" in link or "sort=" in link
    ]
    assert len(links) >= 6  # four headers, previous, two page numbers
    for query in links:
        assert query["q"] == "Bulk"
        assert "stage" not in query
        assert query.get("sort", "urgency").removeprefix("-") in {
            "urgency",
            "name",
            "deadline",
            "activity",
        }


def test_sorting_by_each_column_both_ways(as_user, northwind, northwind_admin):
    now = timezone.now()
    soon, later, idle = (
        make_client(northwind, actor=northwind_admin, first_name=first, last_name=last)
        for first, last in (("Cai", "Soon"), ("Ada", "Later"), ("Bo", "Idle"))
    )
    services.grant_create(
        profile=later.profiles.get(), method="connection_request", actor=northwind_admin
    )
    with time_machine.travel(now - timedelta(days=25)):
        services.grant_create(
            profile=soon.profiles.get(), method="connection_request", actor=northwind_admin
        )
    Client.objects.filter(pk=idle.pk).update(last_activity_at=now - timedelta(days=90))
    Client.objects.filter(pk=later.pk).update(last_activity_at=now - timedelta(days=3))
    Client.objects.filter(pk=soon.pk).update(last_activity_at=now - timedelta(hours=2))
    client = as_user(northwind_admin)

    def order(sort):
        page = client.get(reverse("dashboard"), {"sort": sort} if sort else {}).content.decode()
        return surnames_on(page)

    assert order("") == order("urgency") == ["Soon", "Later", "Idle"]
    assert order("-urgency") == ["Idle", "Later", "Soon"]
    assert order("name") == ["Idle", "Later", "Soon"]
    assert order("-name") == ["Soon", "Later", "Idle"]
    assert order("activity") == ["Idle", "Later", "Soon"]  # the longest untouched first
    assert order("-activity") == ["Soon", "Later", "Idle"]
    assert order("deadline") == ["Soon", "Later", "Idle"]
    assert order("-deadline") == ["Later", "Soon", "Idle"]  # no deadline: last either way


def test_without_a_deadline_clients_come_last_by_name_either_way(
    as_user, northwind, northwind_admin
):
    bulk_clients(northwind, northwind_admin, 3)
    for last in ("Zeta", "Alpha"):
        make_client(northwind, actor=northwind_admin, last_name=last)
    client = as_user(northwind_admin)
    for sort in ("deadline", "-deadline"):
        page = client.get(reverse("dashboard"), {"sort": sort}).content.decode()
        assert surnames_on(page)[-2:] == ["Alpha", "Zeta"], sort
    latest_first = names_on(
        client.get(reverse("dashboard"), {"sort": "-deadline"}).content.decode()
    )
    assert latest_first[:3] == ["Bulk Client0000", "Bulk Client0001", "Bulk Client0002"]


def test_the_sorted_header_says_so_and_its_link_turns_the_order_round(
    as_user, northwind, northwind_admin
):
    make_client(northwind, actor=northwind_admin)
    client = as_user(northwind_admin)
    page = client.get(reverse("dashboard"), {"q": "a", "sort": "name"}).content.decode()
    headers = re.findall(
        r"<th scope=\"col\"([^>]*)><a class=\"sort-link\" href=\"\?([^\"]+)\">([^<]+)<", page
    )
    by_label = {
        label: (attributes.strip(), link.replace("&amp;", "&"))
        for attributes, link, label in headers
    }
    assert set(by_label) == {"Client", "Open work", "Next deadline", "Last activity"}
    assert by_label["Client"] == ('aria-sort="ascending"', "q=a&sort=-name")
    assert by_label["Next deadline"] == ("", "q=a&sort=deadline")
    assert by_label["Open work"] == ("", "q=a&sort=urgency")
    page = client.get(reverse("dashboard"), {"sort": "-activity"}).content.decode()
    assert (
        '<th scope="col" aria-sort="descending"><a class="sort-link" href="?sort=activity">Last activity'
        in page
    )
    assert "most recent activity first" in page
    assert page.count("aria-sort=") == 1


def test_a_junk_sort_or_page_is_said_and_the_list_still_shows(as_user, northwind, northwind_admin):
    make_client(northwind, actor=northwind_admin, last_name="Shown")
    for params, said in [
        (
            {"sort": "price"},
            "That sort order was not recognised, so the clients are most urgent first.",
        ),
        ({"page": "two"}, "That page number was not recognised, so this is the first page."),
        ({"page": "0"}, "That page number was not recognised, so this is the first page."),
        ({"page": "7"}, "There is only 1 page of clients: this is the last."),
    ]:
        response = as_user(northwind_admin).get(reverse("dashboard"), params)
        assert response.status_code == 200, params
        text = response.content.decode()
        assert said in text, params
        assert "Shown" in text, params


def test_the_filters_fold_behind_one_button_saying_how_many_are_on(
    as_user, northwind, northwind_admin, northwind_staff
):
    make_client(northwind, actor=northwind_staff)
    client = as_user(northwind_admin)
    page = client.get(reverse("dashboard")).content.decode()
    assert '<details class="card filters-panel">\n  <summary>Filter and sort</summary>' in page
    page = client.get(
        reverse("dashboard"), {"overdue": "1", "q": "x", "assignee": "all", "sort": "name"}
    ).content.decode()
    assert '<summary>Filter and sort <span class="badge">2 on</span></summary>' in page
    assert (
        '<a href="/dashboard/?sort=name" class="button button-secondary">Clear filters</a>' in page
    )


@pytest.mark.parametrize("size", [10, 500])
@pytest.mark.parametrize("params", [{}, {"sort": "-deadline", "page": "2"}, {"sort": "name"}])
def test_caseload_query_budget_does_not_grow(
    as_user, northwind, northwind_admin, django_assert_num_queries, size, params
):
    bulk_clients(northwind, northwind_admin, size)
    client = as_user(northwind_admin)
    client.get(reverse("dashboard"))  # warm the session
    # session, user, membership (+firm, second factor, unread count), the result count,
    # the page of clients, profiles+organizations, live grants, open enrollments, open
    # rounds, live credentials (+kinds), the staff list for the filter
    with django_assert_num_queries(10):
        assert client.get(reverse("dashboard"), params).status_code == 200


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
    # catalogue, the addresses marked bouncing among those shown, and the audited read
    with django_assert_num_queries(19):
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
    assert "60 clients, most urgent first. Page 1 of 3." in page
    page = as_user(northwind_admin).get(reverse("dashboard"), {"q": "nobody"}).content.decode()
    assert "0 clients match these filters" in page
    page = as_user(northwind_admin).get(reverse("dashboard"), {"q": "Client0007"}).content.decode()
    assert "1 client matches these filters, most urgent first." in page


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
    # Apart from the primary action: a step's destructive actions sit under its "More…".
    menu = '<details class="menu step-menu"><summary class="button button-small button-secondary">More…</summary>'
    for primary, destructive in [
        ("Verified: mark active", "Record expired…"),
        ("Verified: signature confirmed", "Cancel round…"),
    ]:
        after_primary = text[text.index(primary) :]
        assert after_primary.index(menu) < after_primary.index(destructive), destructive
