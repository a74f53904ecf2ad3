"""Portal invitations for providers and delegates: nobody changes another's invitation, and
nobody is linked to a client record without accepting (issue 11, findings 1 and 7)."""

import re

import pytest
from django.core import mail
from django.test import Client as Browser
from django.urls import reverse

from clients.models import Delegate
from portal import services as portal_services
from portal.models import Invitation, Membership, Role

pytestmark = pytest.mark.django_db


def add_delegate_as(as_user, provider, rivera, email):
    as_user(provider).post(
        reverse("delegate_add", args=[rivera.public_id]), {"name": "Someone", "email": email}
    )
    return Delegate.objects.get(client=rivera, email=email)


def test_provider_cannot_hijack_a_pending_staff_invitation(
    as_user, northwind, northwind_admin, provider, rivera, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        staff_invitation = portal_services.invitation_create(
            firm=northwind,
            email="newhire@northwind.test",
            role=Role.STAFF,
            invited_by=northwind_admin,
        )
    emailed_link = re.search(r"(/invitations/\S+/)", mail.outbox[-1].body).group(1)
    delegate = add_delegate_as(as_user, provider, rivera, "newhire@northwind.test")

    with django_capture_on_commit_callbacks(execute=True):
        response = as_user(provider).post(
            reverse("portal_invite", args=["delegate", delegate.public_id]), follow=True
        )

    assert "could not be sent" in response.content.decode()
    staff_invitation.refresh_from_db()
    assert staff_invitation.role == Role.STAFF
    assert staff_invitation.subject_uuid is None
    assert Invitation.objects.filter(email="newhire@northwind.test").count() == 1
    # The admin's emailed link still works and still makes a staff member.
    assert Browser().get(emailed_link).status_code == 200


def test_inviting_a_delegate_twice_resends_their_own_invitation(
    as_user, provider, rivera, django_capture_on_commit_callbacks
):
    delegate = add_delegate_as(as_user, provider, rivera, "bo@rivera.test")
    url = reverse("portal_invite", args=["delegate", delegate.public_id])
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            as_user(provider).post(url)
    invitation = Invitation.objects.get(email="bo@rivera.test")
    assert invitation.subject_uuid == delegate.public_id
    assert [m.to for m in mail.outbox] == [["bo@rivera.test"], ["bo@rivera.test"]]


def test_provider_cannot_link_a_firm_member_without_their_consent(
    as_user, northwind_staff, provider, rivera, django_capture_on_commit_callbacks
):
    delegate = add_delegate_as(as_user, provider, rivera, northwind_staff.email)
    unknown = add_delegate_as(as_user, provider, rivera, "nobody-yet@rivera.test")

    answers = []
    for subject in (delegate, unknown):
        with django_capture_on_commit_callbacks(execute=True):
            response = as_user(provider).post(
                reverse("portal_invite", args=["delegate", subject.public_id]), follow=True
            )
        answers.append(re.sub(r"\S+@\S+", "<email>", _messages(response)))

    delegate.refresh_from_db()
    assert delegate.user is None  # not linked: they must accept
    assert Membership.objects.get(user=northwind_staff).role == Role.STAFF
    # The same answer whether or not the person has an account.
    assert answers[0] == answers[1]
    assert "already has an account" not in answers[0]


def test_an_existing_member_who_accepts_is_linked_and_keeps_their_role(
    as_user, northwind, northwind_staff, provider, rivera, django_capture_on_commit_callbacks
):
    delegate = add_delegate_as(as_user, provider, rivera, northwind_staff.email)
    with django_capture_on_commit_callbacks(execute=True):
        as_user(provider).post(reverse("portal_invite", args=["delegate", delegate.public_id]))
    link = re.search(r"(/invitations/\S+/)", mail.outbox[-1].body).group(1)
    staff = as_user(northwind_staff)
    staff.post(link)
    delegate.refresh_from_db()
    assert delegate.user == northwind_staff
    assert Membership.objects.get(user=northwind_staff, firm=northwind).role == Role.STAFF


def _messages(response) -> str:
    return " ".join(str(m) for m in response.context["messages"])
