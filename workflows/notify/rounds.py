"""Signature rounds and their signers: each signer asked to sign and reminded until the
deadline, the staff side alerted, then asked to verify what a signer says is signed."""

from django.utils import timezone

from clients.models import Client
from notifications.outbox import cancel, reopen, schedule
from portal.models import parse_day_list

from .. import steps
from ..models import SignatureRound, Signer
from ..rules import Party
from .common import (
    Clock,
    _client_with_people,
    _long_date,
    _message,
    _staff_message,
    _tell_staff_now,
    reminders,
)

ROUND_STAFF_KINDS = ["round.staff_alert", "round.overdue"]


def _round_context(
    signature_round: SignatureRound, signer: Signer, *, headline: str, lines: list[str]
):
    profile = signature_round.enrollment.profile
    return {
        "subject": headline,
        "headline": headline,
        "lines": lines,
        "steps": steps.sign_for(signature_round.method, pecos_email=signer.pecos_email),
        "notes": steps.SIGNING_FACTS,
        # An official signing someone else's application reads whose it is.
        "profile": profile.label
        if signer.is_provider
        else f"{profile.client.display_name}, {profile.label}",
        "deadline": signature_round.deadline,
    }


# The first line of a signer's "ready to sign" message, by signature method.
ROUND_INTRO = {
    SignatureRound.Method.ELECTRONIC: "CMS will email you asking for your signature, maybe "
    "before we call. It is genuine: here is how to sign.",
    SignatureRound.Method.UPLOAD: "We sent you the certification statement to sign in ink; "
    "the signed page is uploaded in PECOS. CMS counts 20 days from submission.",
    SignatureRound.Method.PAPER: "We sent you the certification statement to sign in ink "
    "and post to the Medicare contractor (not to us). CMS counts 20 days from submission "
    "and the post is slow: please sign and post it today.",
}
SIGNER_REMINDER_KINDS = ["round.reminder"]


def signer_person(signer: Signer, client: Client):
    """(user or None, email, name) of the person who signs: the provider, the delegate
    recorded as the official, or an official known by name and email only."""
    if signer.is_provider:
        return client.user, client.email, client.first_name
    official = signer.official
    delegate = official.delegate if official else None
    if delegate is not None and delegate.is_active:
        return delegate.user, delegate.email, delegate.name
    return None, signer.pecos_email, signer.name


def _signing_as(signer: Signer, profile) -> list[str]:
    """Who they sign as, when it is not their own individual application."""
    if signer.role == Signer.Role.PROVIDER and profile.is_individual:
        return []
    organization = signer.official.organization if signer.official else profile.organization
    as_what = (
        "as the provider reassigning your benefits"
        if signer.role == Signer.Role.PROVIDER
        else f"as {signer.get_role_display()} of {organization.legal_name}"
    )
    return [f"You sign {as_what}."]


def round_opened(signature_round: SignatureRound) -> None:
    profile = signature_round.enrollment.profile
    client = _client_with_people(profile.client_id)
    firm = client.firm
    now = timezone.now()
    opened = signature_round.opened_at
    why = (
        [
            f"This is signature round {signature_round.number}: {signature_round.reason}. Every "
            "revision after submission needs a new signature; this is normal."
        ]
        if signature_round.is_revision
        else []
    )
    # None on or after the deadline, nor any already past (a round recorded late).
    clock = Clock(firm, now, deadline=signature_round.deadline, start=opened)
    messages = []
    signers = list(
        signature_round.signers.select_related("official__organization", "official__delegate__user")
    )
    for signer in signers:
        person = signer_person(signer, client)
        intro = [ROUND_INTRO[signature_round.method], *_signing_as(signer, profile)]
        messages.append(
            _message(
                client,
                signer,
                kind="round.opened",
                step="opened",
                due=opened,
                to=person,
                context=_round_context(
                    signature_round,
                    signer,
                    headline="Your application is ready to sign",
                    lines=intro + why,
                ),
            )
        )
        # Every method has the same 20 days (CMS): reminders, staff alerts and the deadline
        # alert run for electronic, uploaded and mailed signatures alike.
        waiting = _round_context(
            signature_round,
            signer,
            headline="Reminder: your application is waiting for your signature",
            lines=[
                f"Please sign by {_long_date(firm, signature_round.deadline)}: CMS rejects "
                "applications whose signature has not arrived by then.",
                *_signing_as(signer, profile),
            ]
            + why,
        )
        messages += reminders(
            client,
            signer,
            clock,
            parse_day_list(firm.round_reminder_days),
            kind="round.reminder",
            people=[person],
            context=waiting,
        )
    names = ", ".join(signer.name for signer in signers)
    messages += reminders(
        client,
        signature_round,
        clock,
        parse_day_list(firm.round_staff_alert_days),
        kind="round.staff_alert",
        context=lambda day, due: {
            "subject": f"{client.display_name}: round {signature_round.number} "
            f"unsigned after {day} days",
            "headline": "A signature is still missing",
            "lines": [
                f"Round {signature_round.number} for {profile.label} "
                f"({signature_round.get_method_display()}; signers: {names}) is "
                f"due on {signature_round.deadline.astimezone(firm.zone):%B %-d}."
            ],
        },
    )
    messages += _staff_message(
        client,
        signature_round,
        kind="round.overdue",
        step="deadline",
        due=signature_round.deadline,
        context={
            "subject": f"{client.display_name}: round {signature_round.number} passed "
            "its signature deadline",
            "headline": "A signature round passed its deadline",
            "lines": [
                f"Round {signature_round.number} for {profile.label} is still not confirmed. "
                "CMS rejects an application whose signature has not arrived within "
                f"{firm.signature_deadline_days} days: check PECOS and the contractor today."
            ],
        },
    )
    schedule(messages)


def _signer_ids(signature_round: SignatureRound) -> list[str]:
    return [str(pk) for pk in signature_round.signers.values_list("public_id", flat=True)]


def round_waiting_stopped(
    signature_round: SignatureRound, *, keep_staff_alerts: bool = False
) -> None:
    """Stop the signers' reminders; a statement in the mail keeps its staff alerts: the
    contractor must still receive it within the 20 days."""
    cancel(
        subject_type="signer", subject_ids=_signer_ids(signature_round), kinds=SIGNER_REMINDER_KINDS
    )
    _legacy_reminders(signature_round, stop=True)
    if not keep_staff_alerts:
        cancel(
            subject_type="signatureround",
            subject_ids=[str(signature_round.public_id)],
            kinds=ROUND_STAFF_KINDS,
        )


def round_waiting_again(signature_round: SignatureRound) -> None:
    reopen(
        subject_type="signatureround",
        subject_id=str(signature_round.public_id),
        kinds=ROUND_STAFF_KINDS,
    )


def _legacy_reminders(signature_round: SignatureRound, *, stop: bool) -> None:
    """Rounds opened before they had signers have their reminders (to the provider and
    the delegates who could sign) filed against the round itself."""
    if stop:
        cancel(
            subject_type="signatureround",
            subject_ids=[str(signature_round.public_id)],
            kinds=SIGNER_REMINDER_KINDS,
        )
    else:
        reopen(
            subject_type="signatureround",
            subject_id=str(signature_round.public_id),
            kinds=SIGNER_REMINDER_KINDS,
        )


def signer_waiting_stopped(signer: Signer) -> None:
    cancel(subject_type="signer", subject_ids=[str(signer.public_id)], kinds=SIGNER_REMINDER_KINDS)
    if signer.is_provider:
        _legacy_reminders(signer.signature_round, stop=True)


def signer_waiting_again(signer: Signer) -> None:
    reopen(subject_type="signer", subject_id=str(signer.public_id), kinds=SIGNER_REMINDER_KINDS)
    if signer.is_provider:
        _legacy_reminders(signer.signature_round, stop=False)


def signer_claimed(signer: Signer, party: Party) -> None:
    """One signer says they signed: their reminders stop; staff verify it in PECOS."""
    signer_waiting_stopped(signer)
    signature_round = signer.signature_round
    client = _client_with_people(signature_round.enrollment.profile.client_id)
    _tell_staff_now(
        client,
        signature_round,
        kind="round.verify",
        step=f"claim-{signer.pk}",
        subject=f"Verify: {client.display_name}, round {signature_round.number}: "
        f"{signer.name} says they signed",
        headline=f"{signer.name} says round {signature_round.number} is signed",
        lines=[
            f"They sign as {signer.get_role_display()}. "
            + (
                "Check the signature in PECOS and confirm it, or send it back."
                if not signature_round.is_mailed_method
                else "They say the signed statement is in the mail to the "
                "contractor: record it received when the contractor has it."
            )
        ],
    )


def round_confirmed(signature_round: SignatureRound) -> None:
    round_waiting_stopped(signature_round)
    client = _client_with_people(signature_round.enrollment.profile.client_id)
    schedule(
        [
            _message(
                client,
                signature_round,
                kind="round.signed",
                step="signed",
                due=timezone.now(),
                to=(client.user, client.email, client.first_name),
                essential=False,
                context={
                    "subject": "Signature received: thank you",
                    "headline": "We have your signature",
                    "lines": [
                        f"Round {signature_round.number} is signed and the application is "
                        "with the contractor."
                    ],
                },
            )
        ]
    )
