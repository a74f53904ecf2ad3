import pytest
from django.urls import reverse

from portal.models import AuditEvent, Membership, Role

pytestmark = pytest.mark.django_db


def membership_of(user, firm):
    return Membership.objects.get(user=user, firm=firm)


def test_admin_changes_a_members_role(as_user, northwind, northwind_admin, northwind_staff):
    member = membership_of(northwind_staff, northwind)
    response = as_user(northwind_admin).post(
        reverse("change_role", args=[member.public_id]), {"role": "admin"}
    )
    assert response.status_code == 302
    member.refresh_from_db()
    assert member.role == Role.ADMIN
    event = AuditEvent.objects.get(verb="membership.role_changed")
    assert event.actor == northwind_admin
    assert event.data == {"from": "staff", "to": "admin"}


def test_staff_cannot_promote_themselves(as_user, northwind, northwind_staff):
    member = membership_of(northwind_staff, northwind)
    response = as_user(northwind_staff).post(
        reverse("change_role", args=[member.public_id]), {"role": "admin"}
    )
    assert response.status_code == 403
    member.refresh_from_db()
    assert member.role == Role.STAFF


def test_staff_cannot_reach_admin_pages(as_user, northwind_staff):
    client = as_user(northwind_staff)
    assert client.get(reverse("team")).status_code == 403
    assert client.post(reverse("invite_member"), {"email": "x@y.test"}).status_code == 403


def test_the_last_admin_cannot_step_down(as_user, northwind, northwind_admin):
    member = membership_of(northwind_admin, northwind)
    response = as_user(northwind_admin).post(
        reverse("change_role", args=[member.public_id]), {"role": "staff"}, follow=True
    )
    assert b"at least one active admin" in response.content
    member.refresh_from_db()
    assert member.role == Role.ADMIN


def test_bad_role_is_a_message_not_an_error(as_user, northwind, northwind_admin, northwind_staff):
    member = membership_of(northwind_staff, northwind)
    response = as_user(northwind_admin).post(
        reverse("change_role", args=[member.public_id]), {"role": "client"}, follow=True
    )
    assert response.status_code == 200
    assert b"Choose admin or staff." in response.content


def test_deactivation_ends_the_members_sessions_at_once(
    as_user, northwind, northwind_admin, northwind_staff
):
    staff_client = as_user(northwind_staff)
    assert staff_client.get(reverse("dashboard")).status_code == 200
    member = membership_of(northwind_staff, northwind)
    as_user(northwind_admin).post(reverse("deactivate_member", args=[member.public_id]))
    member.refresh_from_db()
    assert not member.is_active
    response = staff_client.get(reverse("dashboard"))
    assert response.status_code == 302
    assert response.url == reverse("account_login")
    # Logged out for good: the session no longer carries the user.
    assert "_auth_user_id" not in staff_client.session
    assert AuditEvent.objects.filter(verb="membership.deactivated", actor=northwind_admin).exists()


def test_deactivated_member_cannot_log_in_to_data(client, deactivated):
    from tests.portal.factories import PASSWORD

    client.post(reverse("account_login"), {"login": deactivated.email, "password": PASSWORD})
    response = client.get(reverse("dashboard"))
    assert response.status_code == 302
    assert "/accounts/" in response.url


def test_admin_cannot_deactivate_themselves(as_user, northwind, northwind_admin, northwind_staff):
    member = membership_of(northwind_admin, northwind)
    response = as_user(northwind_admin).post(
        reverse("deactivate_member", args=[member.public_id]), follow=True
    )
    assert b"cannot deactivate yourself" in response.content
    member.refresh_from_db()
    assert member.is_active


def test_reactivated_member_can_work_again(as_user, northwind, northwind_admin, deactivated):
    member = membership_of(deactivated, northwind)
    as_user(northwind_admin).post(reverse("reactivate_member", args=[member.public_id]))
    member.refresh_from_db()
    assert member.is_active
    assert as_user(deactivated).get(reverse("dashboard")).status_code == 200


def test_deactivating_twice_is_a_clear_message(as_user, northwind, northwind_admin, deactivated):
    member = membership_of(deactivated, northwind)
    response = as_user(northwind_admin).post(
        reverse("deactivate_member", args=[member.public_id]), follow=True
    )
    assert b"already deactivated" in response.content


def test_another_firms_member_is_not_found(as_user, bluebird, bluebird_staff, northwind_admin):
    member = membership_of(bluebird_staff, bluebird)
    client = as_user(northwind_admin)
    for name in ("change_role", "deactivate_member", "reactivate_member"):
        response = client.post(reverse(name, args=[member.public_id]), {"role": "admin"})
        assert response.status_code == 404
    member.refresh_from_db()
    assert member.is_active
    assert member.role == Role.STAFF


def test_team_page_lists_only_this_firms_people(
    as_user, northwind_admin, northwind_staff, bluebird_staff
):
    response = as_user(northwind_admin).get(reverse("team"))
    assert northwind_staff.email.encode() in response.content
    assert bluebird_staff.email.encode() not in response.content


def test_team_page_query_budget(as_user, northwind, northwind_admin, django_assert_max_num_queries):
    from tests.portal.factories import InvitationFactory, MembershipFactory

    client = as_user(northwind_admin)

    def count():
        with django_assert_max_num_queries(8) as ctx:
            # session, user, membership+firm, authenticator exists, members, invitations
            assert client.get(reverse("team")).status_code == 200
        return len(ctx.captured_queries)

    small = count()
    MembershipFactory.create_batch(20, firm=northwind)
    InvitationFactory.create_batch(20, firm=northwind)
    assert count() == small


def test_deactivated_staff_stop_receiving_client_phi(
    as_user, northwind, northwind_admin, northwind_staff, rivera, provider
):
    """Finding 2: after deactivation, a provider's "I've done this" must not email (or queue
    an in-app copy for) the former staff member; what was queued to them is cancelled; their
    clients fall to the firm admins."""
    from notifications.models import Notification
    from workflows import services
    from workflows.rules import Party

    individual = rivera.profiles.get(kind="individual")
    grant = services.grant_create(
        profile=individual, method="connection_request", actor=northwind_staff
    )
    queued = Notification.objects.filter(recipient=northwind_staff, state="scheduled")
    assert queued.exists()  # staff alerts scheduled while the request is pending

    membership = Membership.objects.get(user=northwind_staff, firm=northwind)
    response = as_user(northwind_admin).post(
        reverse("deactivate_member", args=[membership.public_id]), follow=True
    )
    assert "1 client" in response.content.decode()

    assert not queued.exists()
    services.grant_claim_done(
        grant=grant, party=Party(name=rivera.display_name, is_provider=True), actor=provider
    )
    to_former = Notification.objects.filter(recipient=northwind_staff).exclude(state="cancelled")
    assert not to_former.exists()
    assert Notification.objects.filter(recipient=northwind_admin, kind="grant.verify").exists()
    rivera.refresh_from_db()
    assert rivera.assigned_staff is None
