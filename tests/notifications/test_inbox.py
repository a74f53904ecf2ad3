import pytest
from django.urls import reverse

from notifications.models import Notification, Preference
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
    from django.utils import timezone

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
