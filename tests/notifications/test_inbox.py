import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from notifications.models import Notification, Preference
from notifications.selectors import INBOX_PAGE_SIZE
from portal.models import Role
from tests.clients.factories import make_client
from tests.portal.factories import MembershipFactory
from workflows import services

pytestmark = pytest.mark.django_db


@pytest.fixture
def request_sent(rivera, northwind_staff):
    profile = rivera.profiles.get(kind="individual")
    return services.grant_create(
        profile=profile, method="connection_request", actor=northwind_staff
    )


def test_provider_sees_the_message_in_the_inbox_with_an_unread_count(
    as_user, provider, request_sent
):
    client = as_user(provider)
    page = client.get(reverse("dashboard")).content.decode()
    assert '1<span class="visually-hidden"> unread</span>' in page
    inbox = client.get(reverse("inbox")).content.decode()
    assert "Please approve your credentialer" in inbox
    assert "Reminder" not in inbox  # future reminders are not shown before they are due


def test_opening_a_notification_marks_it_read_and_goes_to_the_todo(as_user, provider, request_sent):
    item = Notification.objects.get(recipient=provider, channel="in_app", step="sent")
    response = as_user(provider).post(reverse("inbox_mark_read", args=[item.public_id]))
    assert response.url == "/dashboard/"
    item.refresh_from_db()
    assert item.read_at is not None


def test_mark_all_read(as_user, provider, request_sent):
    as_user(provider).post(reverse("inbox_mark_all_read"))
    assert not Notification.objects.filter(
        recipient=provider, channel="in_app", read_at__isnull=True, step="sent"
    ).exists()


def test_nobody_reads_someone_elses_notification(as_user, northwind_staff, request_sent, provider):
    item = Notification.objects.get(recipient=provider, channel="in_app", step="sent")
    assert (
        as_user(northwind_staff).post(reverse("inbox_mark_read", args=[item.public_id])).status_code
        == 404
    )


def test_provider_opts_out_of_non_essential_email(as_user, provider):
    client = as_user(provider)
    page = client.get(reverse("notification_preferences")).content.decode()
    assert "always emailed" in page
    client.post(reverse("notification_preferences"), {})
    assert Preference.objects.get(user=provider).nonessential_email is False
    client.post(reverse("notification_preferences"), {"nonessential_email": "on"})
    assert Preference.objects.get(user=provider).nonessential_email is True


@pytest.mark.parametrize("extra", [0, 25])
def test_inbox_query_budget_does_not_grow(
    as_user, provider, rivera, northwind_staff, django_assert_num_queries, extra
):
    from notifications.outbox import Message, schedule

    schedule(
        [
            Message(
                firm=rivera.firm,
                kind="test.note",
                subject_type="thing",
                subject_id=str(index),
                step="now",
                due_at=timezone.now(),
                template="notification",
                to_email=provider.email,
                recipient=provider,
                context={"subject": f"Note {index}", "lines": []},
            )
            for index in range(3 + extra)
        ]
    )
    client = as_user(provider)
    client.get(reverse("inbox"))
    # session, user, membership (+firm, unread count), the page of notifications
    with django_assert_num_queries(4):
        assert client.get(reverse("inbox")).status_code == 200


# --- the notification centre: by day and client, "Mark all read" (issue 13) -------------


def note(firm, user, number, *, due, link="/dashboard/", title=None, body_lines=("Details.",)):
    """One in-app notification to `user`, due at `due`, opening `link`."""
    from notifications.outbox import Message, schedule

    schedule(
        [
            Message(
                firm=firm,
                kind="test.note",
                subject_type="thing",
                subject_id=str(number),
                step="now",
                due_at=due,
                template="notification",
                to_email=user.email,
                recipient=user,
                link_path=link,
                channels=(Notification.Channel.IN_APP,),
                context={
                    "name": user.display_name,
                    "subject": title or f"Note {number}",
                    "lines": list(body_lines),
                },
            )
        ]
    )
    return Notification.objects.get(subject_id=str(number), recipient=user)


def client_link(client) -> str:
    return reverse("client_detail", args=[client.public_id])


def test_the_inbox_groups_by_the_firms_day_then_by_client(
    as_user, northwind, northwind_staff, rivera
):
    """Chicago: 04:30 UTC on Dec 4 is 22:30 on Dec 3, a day earlier than in UTC."""
    okafor = make_client(northwind, actor=northwind_staff, first_name="Chidi", last_name="Okafor")
    at = datetime(2026, 12, 4, 18, 0, tzinfo=UTC)  # noon in Chicago
    rivera_page, okafor_page = client_link(rivera), client_link(okafor)
    note(
        northwind,
        northwind_staff,
        1,
        due=at - timedelta(hours=2),
        link=rivera_page,
        title="Ana Rivera, LCSW: round 2 unsigned after 7 days",
    )
    note(northwind, northwind_staff, 2, due=at - timedelta(hours=3), link=okafor_page)
    note(northwind, northwind_staff, 3, due=at - timedelta(hours=4), link=rivera_page)
    note(
        northwind,
        northwind_staff,
        4,
        due=datetime(2026, 12, 4, 4, 30, tzinfo=UTC),
        link=okafor_page,
    )
    note(northwind, northwind_staff, 5, due=datetime(2026, 12, 1, 15, 0, tzinfo=UTC))
    with time_machine.travel(at, tick=False):
        page = as_user(northwind_staff).get(reverse("inbox")).content.decode()
    days = re.findall(r'<h2 id="inbox-day-\d+"><time datetime="([\d-]+)">([^<]+)</time>', page)
    assert days == [
        ("2026-12-04", "Today"),
        ("2026-12-03", "Yesterday"),
        ("2026-12-01", "Tuesday, December 1"),
    ]
    today, yesterday, december_1 = re.split(r'<h2 id="inbox-day-\d+">', page)[1:]
    groups = re.findall(r'<h3><a href="([^"]+)">([^<]+)</a>', today)
    assert groups == [(rivera_page, "Ana Rivera, LCSW"), (okafor_page, "Chidi Okafor, MD")]
    assert today.index("Note 3") < today.index("Note 2")  # with Rivera's group, newest first
    assert "2 new</span>" in today
    assert re.findall(r"<h3><a[^>]*>([^<]+)</a>", yesterday) == ["Chidi Okafor, MD"]
    assert ">10:30 PM CST</time>" in yesterday
    assert "<h3>" not in december_1  # about no client: no client heading
    # The client's name is the heading: the title under it does not repeat it.
    assert "<strong>Round 2 unsigned after 7 days</strong>" in today


def test_the_inbox_shows_what_the_message_says_without_greeting_or_link(
    as_user, northwind, provider
):
    note(northwind, provider, 1, due=timezone.now(), body_lines=["Sign round 2 in PECOS."])
    page = as_user(provider).get(reverse("inbox")).content.decode()
    assert "<p>Sign round 2 in PECOS. Northwind" not in page
    assert "<p>Sign round 2 in PECOS.</p>" in page
    assert "Hello" not in page.split("<main", 1)[1]


def test_mark_all_read_marks_only_ones_own_in_this_firm(
    as_user, northwind, bluebird, provider, northwind_staff
):
    now = timezone.now()
    mine = [note(northwind, provider, n, due=now - timedelta(hours=n)) for n in (1, 2)]
    someone_elses = note(northwind, northwind_staff, 3, due=now)
    MembershipFactory(firm=bluebird, user=provider, role=Role.CLIENT)
    other_firms = note(bluebird, provider, 4, due=now)
    response = as_user(provider).post(reverse("inbox_mark_all_read"))
    assert response.status_code == 302
    assert response.url == reverse("inbox")
    for item in mine:
        item.refresh_from_db()
        assert item.read_at is not None
    for item in (someone_elses, other_firms):
        item.refresh_from_db()
        assert item.read_at is None


def test_mark_all_read_twice_changes_nothing_more_and_says_so(as_user, northwind, provider):
    item = note(northwind, provider, 1, due=timezone.now())
    client = as_user(provider)
    first = client.post(reverse("inbox_mark_all_read"), follow=True).content.decode()
    assert "1 notification marked read." in first
    item.refresh_from_db()
    read_at = item.read_at
    second = client.post(reverse("inbox_mark_all_read"), follow=True).content.decode()
    assert "Nothing was unread." in second
    item.refresh_from_db()
    assert item.read_at == read_at
    assert "Mark all read" not in second  # nothing unread: no button


def test_mark_all_read_leaves_what_arrived_after_the_page_was_shown(as_user, northwind, provider):
    now = timezone.now()
    seen = note(northwind, provider, 1, due=now - timedelta(minutes=10))
    page = as_user(provider).get(reverse("inbox")).content.decode()
    shown_at = re.search(r'name="shown_at" value="([^"]+)"', page).group(1)
    assert datetime.fromisoformat(shown_at) <= timezone.now()
    arrived_later = note(northwind, provider, 2, due=now - timedelta(minutes=5))
    Notification.objects.filter(pk=arrived_later.pk).update(due_at=timezone.now())
    as_user(provider).post(
        reverse("inbox_mark_all_read"),
        {"shown_at": (now - timedelta(minutes=1)).isoformat()},
    )
    seen.refresh_from_db()
    arrived_later.refresh_from_db()
    assert seen.read_at is not None
    assert arrived_later.read_at is None


def test_mark_all_read_is_a_post_with_a_csrf_token(northwind, provider):
    note(northwind, provider, 1, due=timezone.now())
    client = Client(enforce_csrf_checks=True)
    client.force_login(provider)
    assert client.get(reverse("inbox_mark_all_read")).status_code == 405
    assert client.post(reverse("inbox_mark_all_read")).status_code == 403
    assert Notification.objects.filter(recipient=provider, read_at__isnull=True).exists()


def test_the_unread_badge_counts_the_firm_one_acts_in(as_user, northwind, bluebird, provider):
    now = timezone.now()
    note(northwind, provider, 1, due=now)
    MembershipFactory(firm=bluebird, user=provider, role=Role.CLIENT)
    for number in (2, 3, 4):
        note(bluebird, provider, number, due=now)
    page = as_user(provider).get(reverse("inbox")).content.decode()
    assert '1<span class="visually-hidden"> unread</span>' in page
    assert "Note 1" in page
    assert "Note 2" not in page


def test_older_notifications_are_a_page_away_and_a_junk_page_is_said(as_user, northwind, provider):
    now = timezone.now()
    for number in range(INBOX_PAGE_SIZE + 5):
        note(northwind, provider, number, due=now - timedelta(minutes=number))
    client = as_user(provider)
    first = client.get(reverse("inbox")).content.decode()
    assert first.count('class="inbox-item') == INBOX_PAGE_SIZE
    older = re.search(r'href="\?after=([^"]+)">Older notifications', first).group(1)
    second = client.get(reverse("inbox"), {"after": older}).content.decode()
    shown = re.findall(r"<strong>Note (\d+)</strong>", second)
    assert shown == [str(number) for number in range(INBOX_PAGE_SIZE, INBOX_PAGE_SIZE + 5)]
    assert "Older notifications" not in second
    junk = client.get(reverse("inbox"), {"after": "not-a-page"})
    assert junk.status_code == 200
    text = junk.content.decode()
    assert "That page of notifications was not recognised, so these are the newest." in text
    assert "<strong>Note 0</strong>" in text


@pytest.mark.parametrize("extra", [0, 25])
def test_staff_inbox_query_budget_does_not_grow_with_clients(
    as_user, northwind, northwind_staff, django_assert_num_queries, extra
):
    now = timezone.now()
    for number in range(3 + extra):
        client = make_client(northwind, actor=northwind_staff)
        note(northwind, northwind_staff, number, due=now, link=client_link(client))
    client = as_user(northwind_staff)
    client.get(reverse("inbox"))
    # session, user, membership (+firm, unread count), the page of notifications, the names
    # of the clients they link to
    with django_assert_num_queries(5):
        assert client.get(reverse("inbox")).status_code == 200
