"""Writes to the tenancy core. Each function is one change, atomic, with its audit event."""

import secrets
import uuid
from datetime import timedelta

from django.core import signing
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from . import audit
from .errors import DomainError
from .models import FIRM_ROLES, Firm, Invitation, Membership, Role, User, normalize_email
from .signals import invitation_closed, invitation_issued

INVITATION_SALT = "portal.invitation"


# --- firms ------------------------------------------------------------------------------


@transaction.atomic
def firm_create(
    *, name: str, admin_email: str, time_zone: str = "America/New_York", actor: User | None = None
) -> tuple[Firm, Invitation]:
    """Create a firm and invite its first admin."""
    name = name.strip()
    if not name:
        raise DomainError("A firm needs a name.")
    slug = slugify(name)[:80] or "firm"
    if Firm.objects.filter(slug=slug).exists():
        raise DomainError(f"A firm named “{name}” already exists.")
    firm = Firm(name=name, slug=slug, time_zone=time_zone)
    firm.full_clean()
    firm.save()
    audit.record("firm.created", actor=actor, firm=firm, target=firm, target_label=name)
    invitation = invitation_create(firm=firm, email=admin_email, role=Role.ADMIN, invited_by=actor)
    return firm, invitation


@transaction.atomic
def firm_update_settings(*, firm: Firm, actor: User, changes: dict) -> Firm:
    """A firm admin changes the firm's settings; the audit event names what changed."""
    firm = Firm.objects.select_for_update().get(pk=firm.pk)
    changed = [name for name, value in changes.items() if getattr(firm, name) != value]
    if not changed:
        raise DomainError("Nothing changed.")
    for name in changed:
        setattr(firm, name, changes[name])
    firm.full_clean()
    firm.save(update_fields=changed)
    audit.record(
        "firm.settings_changed", actor=actor, firm=firm, target=firm, data={"fields": changed}
    )
    return firm


# --- invitations ------------------------------------------------------------------------


def invitation_token(invitation: Invitation) -> str:
    return signing.dumps(
        {"i": str(invitation.public_id), "n": invitation.nonce}, salt=INVITATION_SALT
    )


def invitation_from_token(token: str) -> Invitation:
    """The invitation a link names, if the link is the newest one sent. Raises DomainError."""
    try:
        payload = signing.loads(token, salt=INVITATION_SALT)
        invitation = Invitation.objects.select_related("firm").get(public_id=payload["i"])
    except (signing.BadSignature, KeyError, TypeError, ValueError, Invitation.DoesNotExist):
        raise DomainError("This invitation link is not valid.") from None
    if not secrets.compare_digest(invitation.nonce, str(payload.get("n", ""))):
        raise DomainError("This invitation link was replaced by a newer one. Use the latest email.")
    return invitation


def invitation_ensure_pending(invitation: Invitation) -> None:
    """Raise the reason a person can no longer use this invitation, if any."""
    reason = {
        Invitation.Status.ACCEPTED: "This invitation has already been used. Log in instead.",
        Invitation.Status.REVOKED: "This invitation was withdrawn. Ask the firm for a new one.",
        Invitation.Status.EXPIRED: "This invitation has expired. Ask the firm to send it again.",
    }.get(invitation.status)
    if reason:
        raise DomainError(reason)


def _send_invitation(invitation: Invitation) -> None:
    """The email goes through the notifications outbox, written in this transaction."""
    invitation_issued.send(sender=Invitation, invitation=invitation)


@transaction.atomic
def invitation_create(
    *,
    firm: Firm,
    email: str,
    role: str,
    invited_by: User | None,
    subject_uuid: uuid.UUID | None = None,
) -> Invitation:
    """Invite `email` into `firm` with `role` (for a provider or delegate: to stand for the
    record `subject_uuid`, linked when accepted).

    An invitation belongs to its firm, role and subject: inviting again for the same purpose
    resends it; an open invitation for another purpose is never changed from here (it would
    rotate someone else's link), so the new one is refused until that one is accepted or
    revoked. A firm member may be invited to stand for a client record (they accept to be
    linked); a staff invitation to an existing member is refused.
    """
    email = normalize_email(email)
    if role not in Role.values:
        raise DomainError("Choose a valid role.")
    if role in FIRM_ROLES and Membership.objects.filter(firm=firm, user__email=email).exists():
        raise DomainError(f"{email} is already a member of {firm.name}.")
    existing = Invitation.objects.open().filter(firm=firm, email__iexact=email).first()
    if existing is not None:
        if existing.role == role and existing.subject_uuid == subject_uuid:
            return invitation_resend(invitation=existing, actor=invited_by)
        raise DomainError(
            f"The invitation to {email} could not be sent: another invitation to this address "
            "is open. It can be sent once that one is accepted or revoked."
        )
    now = timezone.now()
    invitation = Invitation(
        firm=firm,
        email=email,
        role=role,
        invited_by=invited_by,
        nonce=secrets.token_urlsafe(16),
        created_at=now,
        issued_at=now,
        expires_at=now + timedelta(days=firm.invitation_days),
        subject_uuid=subject_uuid,
    )
    try:
        with transaction.atomic():
            invitation.save()
    except IntegrityError:
        raise DomainError(f"An invitation for {email} is already open.") from None
    audit.record(
        "invitation.created",
        actor=invited_by,
        firm=firm,
        target=invitation,
        target_label=email,
        data={"role": role},
    )
    _send_invitation(invitation)
    return invitation


@transaction.atomic
def invitation_resend(*, invitation: Invitation, actor: User | None) -> Invitation:
    """Send a fresh link: the old one stops working, the expiry starts again."""
    invitation = Invitation.objects.select_for_update().select_related("firm").get(pk=invitation.pk)
    if invitation.accepted_at or invitation.revoked_at:
        raise DomainError("This invitation is closed; send a new one instead.")
    invitation.nonce = secrets.token_urlsafe(16)
    invitation.issued_at = timezone.now()
    invitation.expires_at = invitation.issued_at + timedelta(days=invitation.firm.invitation_days)
    invitation.save(update_fields=["nonce", "issued_at", "expires_at"])
    audit.record(
        "invitation.resent",
        actor=actor,
        firm=invitation.firm,
        target=invitation,
        target_label=invitation.email,
    )
    _send_invitation(invitation)
    return invitation


@transaction.atomic
def invitation_revoke(*, invitation: Invitation, actor: User) -> Invitation:
    changed = Invitation.objects.open().filter(pk=invitation.pk).update(revoked_at=timezone.now())
    if not changed:
        raise DomainError("This invitation was already accepted or revoked.")
    invitation.refresh_from_db()
    invitation_closed.send(sender=Invitation, invitation=invitation)
    audit.record(
        "invitation.revoked",
        actor=actor,
        firm=invitation.firm,
        target=invitation,
        target_label=invitation.email,
    )
    return invitation


@transaction.atomic
def invitation_accept(
    *, invitation: Invitation, password: str | None, full_name: str = "", user: User | None = None
) -> Membership:
    """Turn a pending invitation into a membership, creating the account if there is none.

    1. Lock the invitation and check it is still pending (accepted links cannot be reused).
    2. Use the logged-in `user` (who must own the invited email) or create the account.
    3. Create the membership, or reactivate a deactivated one, and record the acceptance.
    """
    invitation = Invitation.objects.select_for_update().select_related("firm").get(pk=invitation.pk)
    invitation_ensure_pending(invitation)

    if user is None:
        if User.objects.filter(email__iexact=invitation.email).exists():
            raise DomainError("An account with this email exists. Log in to accept.")
        user = User.objects.create_user(
            email=invitation.email, password=password, full_name=full_name.strip()
        )
        audit.record("user.created", actor=user, firm=invitation.firm, target=user)
    elif normalize_email(user.email) != normalize_email(invitation.email):
        raise DomainError("This invitation was sent to another email address.")

    membership, created = Membership.objects.get_or_create(
        user=user, firm=invitation.firm, defaults={"role": invitation.role}
    )
    if not created and not (membership.is_active and invitation.role == Role.CLIENT):
        # A deactivated member comes back in the invited role; an active member accepting a
        # provider's or delegate's invitation is only linked to that record, never demoted.
        membership.role = invitation.role
        membership.is_active = True
        membership.deactivated_at = None
        membership.save(update_fields=["role", "is_active", "deactivated_at"])
    _mark_email_verified(user)
    invitation.accepted_at = timezone.now()
    invitation.accepted_by = user
    invitation.save(update_fields=["accepted_at", "accepted_by"])
    audit.record(
        "invitation.accepted",
        actor=user,
        firm=invitation.firm,
        target=invitation,
        target_label=invitation.email,
        data={"role": invitation.role},
    )
    return membership


def _mark_email_verified(user: User) -> None:
    """The invitation proved the address; tell allauth so it never asks again."""
    from allauth.account.models import EmailAddress

    EmailAddress.objects.update_or_create(
        user=user, email=user.email, defaults={"verified": True, "primary": True}
    )


# --- memberships ------------------------------------------------------------------------


def _lock_member(membership: Membership) -> Membership:
    return (
        Membership.objects.select_for_update().select_related("user", "firm").get(pk=membership.pk)
    )


def _other_active_admins(membership: Membership) -> bool:
    return (
        Membership.objects.filter(firm=membership.firm, role=Role.ADMIN, is_active=True)
        .exclude(pk=membership.pk)
        .exists()
    )


@transaction.atomic
def membership_change_role(*, membership: Membership, role: str, actor: User) -> Membership:
    if role not in (Role.ADMIN, Role.STAFF):
        raise DomainError("A firm member is either an admin or staff.")
    membership = _lock_member(membership)
    if membership.role not in (Role.ADMIN, Role.STAFF):
        raise DomainError("Providers and delegates are managed from their client page.")
    if membership.role == role:
        raise DomainError(
            f"{membership.user.display_name} is already {membership.get_role_display()}."
        )
    if membership.role == Role.ADMIN and not _other_active_admins(membership):
        raise DomainError("A firm needs at least one active admin.")
    old = membership.role
    membership.role = role
    membership.save(update_fields=["role"])
    audit.record(
        "membership.role_changed",
        actor=actor,
        firm=membership.firm,
        target=membership,
        target_label=membership.user.email,
        data={"from": old, "to": role},
    )
    return membership


@transaction.atomic
def membership_deactivate(*, membership: Membership, actor: User) -> Membership:
    """Remove a member's access at once; their next request logs them out."""
    membership = _lock_member(membership)
    if not membership.is_active:
        raise DomainError(f"{membership.user.display_name} is already deactivated.")
    if membership.user_id == actor.pk:
        raise DomainError("You cannot deactivate yourself; ask another admin.")
    if membership.role == Role.ADMIN and not _other_active_admins(membership):
        raise DomainError("A firm needs at least one active admin.")
    membership.is_active = False
    membership.deactivated_at = timezone.now()
    membership.save(update_fields=["is_active", "deactivated_at"])
    audit.record(
        "membership.deactivated",
        actor=actor,
        firm=membership.firm,
        target=membership,
        target_label=membership.user.email,
    )
    return membership


@transaction.atomic
def membership_reactivate(*, membership: Membership, actor: User) -> Membership:
    membership = _lock_member(membership)
    if membership.is_active:
        raise DomainError(f"{membership.user.display_name} is already active.")
    membership.is_active = True
    membership.deactivated_at = None
    membership.save(update_fields=["is_active", "deactivated_at"])
    audit.record(
        "membership.reactivated",
        actor=actor,
        firm=membership.firm,
        target=membership,
        target_label=membership.user.email,
    )
    return membership
