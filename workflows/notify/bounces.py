"""Addresses that bounce: the mail server refused an address for good
(`notifications.bounces`); the staff side of whoever carries it hears, in the portal. The
signal receivers are connected when `WorkflowsConfig.ready` imports this package."""

from django.dispatch import receiver
from django.urls import reverse
from django.utils import timezone

from clients.models import Client, Delegate, Official
from notifications.bounces import address_bounced, address_in_use
from notifications.outbox import Message, schedule
from portal.models import FIRM_ROLES, Membership, User, normalize_email

from ..models import Signer
from .common import firm_admins, staff_side


def _who_has(firm, address: str) -> list[tuple[Client | None, str]]:
    """Everyone whose record in the firm carries `address`, as (their client, who they are):
    the provider, a delegate, an official, a signer still to sign; a member of the firm has
    no client. An address that bounced is usually one person's; each is named once (the
    provider recorded as an official too, say)."""
    found = [
        (client, "the provider", client.display_name)
        for client in Client.objects.filter(firm=firm, email=address)
    ]
    found += [
        (delegate.client, f"{delegate.name} (delegate)", delegate.name)
        for delegate in Delegate.objects.filter(
            firm=firm, email=address, is_active=True
        ).select_related("client")
    ]
    found += [
        (
            official.organization.client,
            f"{official.name} ({official.get_role_display()} of "
            f"{official.organization.legal_name})",
            official.name,
        )
        for official in Official.objects.filter(
            firm=firm, email=address, is_active=True
        ).select_related("organization__client")
    ]
    found += [
        (signer.signature_round.enrollment.profile.client, f"{signer.name} (signer)", signer.name)
        for signer in Signer.objects.filter(firm=firm, pecos_email=address)
        .exclude(state=Signer.State.SIGNED)
        .select_related("signature_round__enrollment__profile__client")
    ]
    found += [
        (
            None,
            f"{membership.user.display_name} (a member of {firm.name})",
            membership.user.display_name,
        )
        for membership in Membership.objects.filter(
            firm=firm, user__email=address, role__in=FIRM_ROLES, is_active=True
        ).select_related("user")
    ]
    named, people = set(), []
    for client, who, name in found:
        key = (client.pk if client else None, name)
        if key not in named:
            named.add(key)
            people.append((client, who))
    return people


def _bounce_message(firm, mark, *, to: User, subject, link: str, headline: str, lines) -> Message:
    return Message(
        firm=firm,
        kind="email.bouncing",
        subject_type=type(subject).__name__.lower(),
        subject_id=str(subject.public_id),
        step=f"bounce-{mark.pk}",
        due_at=timezone.now(),
        template="notification",
        to_email=to.email,
        recipient=to,
        link_path=link,
        channels=("in_app",),
        context={
            "name": to.display_name,
            "subject": headline,
            "headline": headline,
            "lines": lines,
        },
    )


def address_bouncing(mark, notification) -> None:
    """The mail server refused an address for good (`notifications.bounces`): tell each
    client's staff (the assigned member, else the firm's admins) whose address it is, in the
    portal. An address on no client's record (a member's, or no longer on any record): the
    firm's admins, with the message that bounced."""
    firm = notification.firm
    when = f"{mark.since.astimezone(firm.zone):%B %-d at %-I:%M %p}"
    refused = f"The mail server refused {mark.address} on {when}: “{mark.reply}”."
    by_client: dict[int, tuple[Client, list[str]]] = {}
    elsewhere = []
    for client, who in _who_has(firm, mark.address):
        if client is None:
            elsewhere.append(who)
        else:
            by_client.setdefault(client.pk, (client, []))[1].append(who)
    messages = []
    for client, people in by_client.values():
        headline = f"{client.display_name}: emails to {' and '.join(people)} bounce"
        lines = [
            refused,
            "Emails to it fail at once, and the client page marks it “Email bouncing”. Ask "
            "for the right address and correct every record that carries it (an official's "
            "is the email entered in PECOS: correct it there, then record the official "
            "again); the mark goes when no record carries it.",
        ]
        link = reverse("client_detail", args=[client.public_id])
        messages += [
            _bounce_message(
                firm, mark, to=user, subject=client, link=link, headline=headline, lines=lines
            )
            for user in staff_side(client)
        ]
    if elsewhere or not by_client:
        whose = (
            f"It is the address of {' and '.join(elsewhere)}."
            if elsewhere
            else f"No record carries it now; the email was “{notification.title}”."
        )
        headline = f"Emails to {mark.address} bounce"
        messages += [
            _bounce_message(
                firm,
                mark,
                to=user,
                subject=firm,
                link=reverse("dashboard"),
                headline=headline,
                lines=[refused, whose],
            )
            for user in firm_admins([firm.pk]).get(firm.pk, [])
        ]
    schedule(messages)


@receiver(address_bounced, dispatch_uid="workflows.address_bouncing")
def _address_bounced(sender, mark, notification, **kwargs) -> None:
    address_bouncing(mark, notification)


@receiver(address_in_use, dispatch_uid="workflows.address_in_use")
def _address_in_use(sender, firm, address, **kwargs) -> bool:
    return bool(_who_has(firm, normalize_email(address)))
