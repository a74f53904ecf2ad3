"""The staff daily digest: one email per staff member per working day, at the firm's digest
hour, listing what needs them, grouped by client. Nothing is sent when there is nothing."""

from collections import defaultdict
from datetime import datetime, timedelta

from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from notifications.outbox import Message, schedule
from portal.models import Firm, Membership, Role, User
from workflows.deadlines import renewal_horizon
from workflows.models import AccessGrant, Credential, Enrollment, SignatureRound

NEAR_DAYS = 5
# A credential on file shows in the digest from a month before it expires (the stuck
# report's default), and every day after.
CREDENTIAL_DAYS = 30


def digest_items(firm: Firm, user: User, now: datetime) -> dict[str, list[str]]:
    """{client name: [what needs this person]} for the clients assigned to `user`."""
    items: dict[str, list[str]] = defaultdict(list)
    near = now + timedelta(days=NEAR_DAYS)
    grants = AccessGrant.objects.filter(
        firm=firm, profile__client__assigned_staff=user
    ).select_related("profile__client", "profile__organization")
    for grant in grants.filter(state=AccessGrant.State.PROVIDER_SAYS_DONE):
        items[grant.profile.client.display_name].append(
            f"Verify: provider says access is granted ({grant.profile.label})"
        )
    for grant in grants.filter(state=AccessGrant.State.AWAITING_PROVIDER, deadline__lte=near):
        items[grant.profile.client.display_name].append(
            f"Access request expires {grant.deadline.astimezone(firm.zone):%b %-d} "
            f"({grant.profile.label})"
        )
    for grant in grants.filter(state__in=AccessGrant.RETRYABLE_STATES, next_attempt__isnull=True):
        items[grant.profile.client.display_name].append(
            f"Request {grant.get_state_display().lower()}, not sent again ({grant.profile.label})"
        )
    rounds = SignatureRound.objects.filter(
        firm=firm,
        enrollment__profile__client__assigned_staff=user,
        state__in=SignatureRound.OPEN_STATES,
    ).select_related("enrollment__profile__client", "enrollment__profile__organization")
    for signature_round in rounds:
        name = signature_round.enrollment.profile.client.display_name
        label = f"round {signature_round.number} ({signature_round.enrollment.profile.label})"
        if signature_round.state == SignatureRound.State.PROVIDER_SAYS_SIGNED:
            items[name].append(f"Verify: provider says {label} is signed")
        elif signature_round.deadline <= now:
            items[name].append(f"Overdue: {label} past its signature deadline")
        elif signature_round.deadline <= near:
            items[name].append(
                f"Signature due {signature_round.deadline.astimezone(firm.zone):%b %-d}: {label}"
            )
    for enrollment in Enrollment.objects.filter(
        firm=firm,
        profile__client__assigned_staff=user,
        state__in=Enrollment.OPEN_STATES,
        follow_up_on__lte=now.astimezone(firm.zone).date(),
    ).select_related("profile__client", "profile__organization"):
        items[enrollment.profile.client.display_name].append(
            f"Follow-up due: {enrollment.get_kind_display()} ({enrollment.profile.label})"
        )
    # Credentials: documents to review, requests due soon or overdue, expiries within the
    # month (the stuck report's threshold) or past; revalidations due within the firm's
    # first reminder.
    credentials = Credential.objects.filter(
        firm=firm, profile__client__assigned_staff=user
    ).select_related("kind", "profile__client", "profile__organization")
    for credential in credentials.filter(state=Credential.State.RECEIVED):
        items[credential.profile.client.display_name].append(
            f"Review: {credential} sent ({credential.profile.label})"
        )
    expiring = now + timedelta(days=CREDENTIAL_DAYS)
    for credential in credentials.filter(
        Q(state__in=Credential.OWED_STATES, deadline__lte=near)
        | Q(state=Credential.State.ACCEPTED, deadline__lte=expiring)
    ):
        day = f"{credential.deadline.astimezone(firm.zone):%b %-d}"
        if credential.is_owed:
            what = f"Document {'overdue since' if credential.deadline <= now else 'due'} {day}"
        else:
            what = f"{'Expired' if credential.deadline <= now else 'Expires'} {day}"
        items[credential.profile.client.display_name].append(
            f"{what}: {credential} ({credential.profile.label})"
        )
    for enrollment in Enrollment.objects.filter(
        firm=firm,
        profile__client__assigned_staff=user,
        state__in=Enrollment.OPEN_STATES,
        deadline__lte=now + timedelta(days=renewal_horizon(firm)),
    ).select_related("profile__client", "profile__organization"):
        items[enrollment.profile.client.display_name].append(
            f"Revalidation due at CMS {enrollment.deadline.astimezone(firm.zone):%b %-d} "
            f"({enrollment.profile.label})"
        )
    return dict(sorted(items.items()))


def send_weekly_reports(now: datetime | None = None) -> int:
    """Mondays at the digest hour: each firm admin gets the stuck headline and the ten oldest."""
    from .reports import ReportFilters, stuck_report

    now = now or timezone.now()
    scheduled = 0
    for firm in Firm.objects.all():
        local = now.astimezone(firm.zone)
        if local.weekday() != 0 or local.hour < firm.digest_hour:
            continue
        year, week, _ = local.isocalendar()
        admins = Membership.objects.filter(firm=firm, is_active=True, role=Role.ADMIN)
        for membership in admins.select_related("user", "firm"):
            report = stuck_report(membership=membership, filters=ReportFilters(), now=now)
            counts = report.counts()
            scheduled += schedule(
                [
                    Message(
                        firm=firm,
                        kind="report.weekly",
                        subject_type="user",
                        subject_id=str(membership.user.public_id),
                        step=f"{year}-W{week:02d}",
                        due_at=now,
                        template="weekly_report",
                        to_email=membership.user.email,
                        recipient=membership.user,
                        link_path=reverse("stuck_report"),
                        context={
                            "name": membership.user.display_name,
                            "counts": counts,
                            "oldest": report.oldest(10),
                        },
                        channels=("email",),
                    )
                ]
            )
    return scheduled


def send_due_digests(now: datetime | None = None) -> int:
    """Schedule today's digest for every staff member whose firm's digest hour has come."""
    now = now or timezone.now()
    scheduled = 0
    for firm in Firm.objects.all():
        local = now.astimezone(firm.zone)
        if local.weekday() >= 5 or local.hour < firm.digest_hour:
            continue
        members = Membership.objects.firm_staff(firm).select_related("user")
        for membership in members:
            user = membership.user
            items = digest_items(firm, user, now)
            if not items:
                continue
            count = sum(len(lines) for lines in items.values())
            scheduled += schedule(
                [
                    Message(
                        firm=firm,
                        kind="digest",
                        subject_type="user",
                        subject_id=str(user.public_id),
                        step=local.date().isoformat(),
                        due_at=now,
                        template="digest",
                        to_email=user.email,
                        recipient=user,
                        essential=True,
                        link_path=reverse("dashboard"),
                        context={"groups": items, "count": count, "name": user.display_name},
                        channels=("email",),
                    )
                ]
            )
    return scheduled
