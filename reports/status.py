"""The client status report: one provider's profiles and access, enrollments, signature rounds
and what is waiting on whom, as staff print it or email it to the provider.

Like the client page, this module sits above `workflows`: it reads the workflow rows of one
client and reuses the workflows' own readings of them (`todos_for`, `open_items`,
`access_summary`) rather than restating who holds the ball.
"""

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from django.db import transaction
from django.db.models import QuerySet
from django.urls import reverse
from django.utils import timezone

from clients import services
from clients.models import Client, Profile
from notifications.models import Notification
from notifications.outbox import Message, schedule
from portal.models import User
from workflows.deadlines import days_left
from workflows.models import AccessGrant, Enrollment, Holder, SignatureRound
from workflows.selectors import (
    CredentialRow,
    OpenItem,
    access_summary,
    client_with_history,
    credential_rows,
    open_items,
)
from workflows.todos import Todo, todos_for


def status_queryset() -> QuerySet:
    """Everything the report reads, in a fixed number of queries (enrollments oldest first)."""
    return client_with_history(enrollment_order="created_at")


@dataclass
class StatusReport:
    """One client's status as of a moment. Profiles carry `shown_grant` (the live attempt, else
    the latest closed one) and `is_connected`; enrollments carry `days_in_state`."""

    client: Client
    as_of: datetime
    zone: ZoneInfo
    profiles: list[Profile]
    connected: int
    enrollments: list[Enrollment]
    signature_rounds: list[SignatureRound]
    credentials: list[CredentialRow]
    # What is waiting on whom.
    todos: list[Todo]  # the provider's to-dos they have not said are done
    provider_enrollments: list[Enrollment]  # staff marked the ball as the provider's
    firm_items: list[OpenItem]
    cms_items: list[OpenItem]

    @property
    def waits_on_provider(self) -> bool:
        return bool(self.todos or self.provider_enrollments)

    @property
    def has_paper(self) -> bool:
        return any(r.is_paper for r in self.signature_rounds)


def status_report(client: Client, *, now: datetime | None = None) -> StatusReport:
    """The report of a client fetched with `status_queryset()`; runs no query of its own.

    1. Derive, from the prefetched rows, the attributes the workflows' readers expect: live
       and pending grants, open enrollments, open rounds (as the client page does).
    2. Access: per profile the attempt to show; "N of M connected" from `access_summary`.
    3. The provider's side: `todos_for` (staff view), minus steps they said are done (staff
       verify those, so they are the firm's), plus open enrollments staff marked as theirs.
    4. The firm's and CMS's side: `open_items`, the caseload's reading of each open step.
    """
    now = now or timezone.now()
    firm = client.firm
    profiles = list(client.profiles.all())
    for profile in profiles:
        profile.live_grants = [
            g
            for g in profile.all_grants
            if g.state in (*AccessGrant.OPEN_STATES, AccessGrant.State.ACTIVE)
        ]
        profile.pending_grants = [
            g for g in profile.all_grants if g.state in AccessGrant.PENDING_STATES
        ]
        profile.open_enrollments = [e for e in profile.all_enrollments if e.is_open]
        for enrollment in profile.all_enrollments:
            enrollment.open_rounds = [r for r in enrollment.all_rounds if r.is_open]
            enrollment.open_developments = [
                d for d in enrollment.all_developments if d.is_open and d.provider_must_act
            ]
            # Calendar days in the firm's time zone, counted as deadlines are.
            enrollment.days_in_state = days_left(firm, now, enrollment.state_entered_at)
        profile.shown_grant = next(iter(profile.live_grants or profile.all_grants), None)
        profile.is_connected = any(g.state == AccessGrant.State.ACTIVE for g in profile.live_grants)
    connected, _total = access_summary(client)
    enrollments = [e for profile in profiles for e in profile.all_enrollments]
    items = open_items(client)
    return StatusReport(
        client=client,
        as_of=now,
        zone=firm.zone,
        profiles=profiles,
        connected=connected,
        enrollments=enrollments,
        signature_rounds=[r for e in enrollments for r in e.all_rounds],
        credentials=credential_rows(profiles, firm, now=now),
        todos=[todo for todo in todos_for(client, None, now=now) if not todo.claimed],
        provider_enrollments=[
            e
            for profile in profiles
            for e in profile.open_enrollments
            if not e.open_rounds and e.holder == Holder.PROVIDER
        ],
        firm_items=[item for item in items if item.holder == Holder.FIRM.label],
        cms_items=[item for item in items if item.holder == Holder.CMS.label],
    )


@transaction.atomic
def status_send(*, client: Client, actor: User, now: datetime | None = None) -> StatusReport:
    """Email the report to the provider through the outbox, and note it on the timeline.

    A status the firm chose to send is essential (sent whatever the provider's preferences),
    and each send is a new message: its step is the moment of sending (to the second, so a
    double click sends once). Email only: the provider's portal shows their to-dos live, an
    inbox copy of a snapshot would go stale.
    """
    now = now or timezone.now()
    report = status_report(client, now=now)
    schedule(
        [
            Message(
                firm=client.firm,
                kind="client.status",
                subject_type="client",
                subject_id=str(client.public_id),
                step=f"sent-{now:%Y%m%d%H%M%S}",
                due_at=now,
                template="client_status",
                to_email=client.email,
                recipient=client.user,
                essential=True,
                link_path=reverse("dashboard"),
                context={"name": client.first_name, "report": report},
                channels=(Notification.Channel.EMAIL,),
            )
        ]
    )
    services.record("client.status_sent", client, actor=actor, email=client.email)
    return report
