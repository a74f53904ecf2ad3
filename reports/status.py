"""The client status report: one provider's profiles and access, enrollments, signature rounds
and what is waiting on whom, as staff print it or email it to the provider.

Like the client page, this module sits above `workflows`: it reads one client's case file
(`workflows.casefile`) and its to-dos rather than restating who holds the ball.
"""

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from django.db import transaction
from django.db.models import QuerySet
from django.urls import reverse
from django.utils import timezone

from clients import services
from clients.models import Client
from notifications.models import Notification
from notifications.outbox import Message, schedule
from portal.models import User
from workflows.casefile import ClientFile, CredentialRow, OpenItem, ProfileFile, client_file
from workflows.deadlines import days_since
from workflows.models import DevelopmentRequest, Enrollment, Holder, SignatureRound
from workflows.todos import Todo, todos_for


def status_queryset() -> QuerySet:
    """The client with what its case file reads beside it: its firm and assigned staff."""
    return Client.objects.select_related("firm", "assigned_staff", "user")


@dataclass(frozen=True)
class EnrollmentLine:
    enrollment: Enrollment
    days_in_state: int  # calendar days in the firm's time zone, counted as deadlines are
    open_requests: list[DevelopmentRequest]  # what the contractor asked for, still open


@dataclass
class StatusReport:
    """One client's status as of a moment, read from its case file (with history)."""

    client: Client
    as_of: datetime
    zone: ZoneInfo
    profiles: list[ProfileFile]
    connected: int
    enrollments: list[EnrollmentLine]  # oldest first
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


def status_file(client: Client) -> ClientFile:
    """The case file the report reads: everything, enrollments oldest first."""
    return client_file(client, history=True, enrollment_order="created_at")


def status_report(client: Client, *, now: datetime | None = None) -> StatusReport:
    """The report of a client fetched with `status_queryset()`.

    - Access: per profile the attempt to show, and "N of M connected".
    - The provider's side: their to-dos (staff view), minus steps they said are done (staff
      verify those, so they are the firm's), plus open enrollments staff marked as theirs.
    - The firm's and CMS's side: the case file's open items, the caseload's reading of each
      open step.
    """
    now = now or timezone.now()
    case = status_file(client)
    firm = client.firm
    enrollment_files = [e for profile in case.profiles for e in profile.enrollments]
    items = case.open_items
    return StatusReport(
        client=client,
        as_of=now,
        zone=firm.zone,
        profiles=case.profiles,
        connected=case.connected,
        enrollments=[
            EnrollmentLine(
                e.enrollment,
                days_in_state=days_since(firm, e.enrollment.state_entered_at, now),
                open_requests=[d.request for d in e.open_developments],
            )
            for e in enrollment_files
        ],
        signature_rounds=[r.signature_round for e in enrollment_files for r in e.rounds],
        credentials=case.credential_rows(now=now),
        todos=[todo for todo in todos_for(case, None, now=now) if not todo.claimed],
        provider_enrollments=[
            e.enrollment
            for profile in case.profiles
            for e in profile.open_enrollments
            if not e.open_rounds and e.enrollment.holder == Holder.PROVIDER
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
