"""A person's deadlines as an iCalendar feed, behind a secret address they can rotate.

Staff and admins get the clocks of their caseload (an admin's includes the unassigned
clients); providers and delegates get their to-dos that carry a deadline. Each clock is one
all-day event on its date in the firm's time zone, with a UID made of the clock's kind and its
object's public id, so a calendar app updates the event when the date moves instead of adding
another. Event text names the client's last name and the step, nothing more: no NPI, no email,
no notes or reasons (a calendar is synced to phones and shared more easily than the portal).
"""

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

import icalendar
from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.urls import reverse
from django.utils import timezone

from clients.models import Client, Profile
from clients.selectors import clients_visible_to
from portal import audit
from portal.models import Membership

from .casefile import client_files
from .models import (
    AccessGrant,
    CalendarFeed,
    Credential,
    DevelopmentRequest,
    Enrollment,
    SignatureRound,
    Signer,
    revalidation_clock_running,
)
from .todos import party_for, todos_for

# An overdue step stays in the calendar for a month: it still needs doing, and a month covers
# the grace CMS's contractors usually allow before they reject.
PAST_DAYS = 30
# A year ahead and a margin: licenses, insurance and revalidations come round about yearly.
FUTURE_DAYS = 400
# Calendar apps fetch the whole feed on every refresh and some give up on large ones; the
# soonest 2000 are more than a person's caseload has in a year.
MAX_EVENTS = 2000
PRODID = "-//credportal//deadlines//EN"


@dataclass(frozen=True)
class Deadline:
    """One clock as the calendar shows it."""

    kind: str  # "grant", "round", "development", "reconsideration", "revalidation"...
    public_id: object
    moment: datetime
    last_name: str
    profile_label: str
    step: str
    path: str

    @property
    def uid(self) -> str:
        return f"{self.kind}-{self.public_id}@credportal"


# --- what each clock says ---------------------------------------------------------------

GRANT_STEPS = {
    AccessGrant.Method.CONNECTION_REQUEST: "connection request expires",
    AccessGrant.Method.ADD_STAFF: "adding the firm as staff due",
    AccessGrant.Method.ADD_SURROGATE: "adding the firm as surrogate due",
}


def _grant_step(grant: AccessGrant) -> str:
    return GRANT_STEPS.get(grant.method, "access request due")


def _round_step(signature_round: SignatureRound) -> str:
    return f"signature due (round {signature_round.number})"


def _signer_step(signer: Signer, signature_round: SignatureRound) -> str:
    step = _round_step(signature_round)
    if signer.is_provider:
        return step
    return f"{step[:-1]}, {signer.get_role_display()})"


def _credential_step(credential: Credential) -> str:
    """A requested document's due date, or when the one on file ends (the sooner of the two
    is its clock: workflows.credentials.clock_of)."""
    what = credential.what
    owed_first = (
        credential.state in Credential.OWED_STATES
        and credential.due_on is not None
        and (credential.expires_on is None or credential.due_on <= credential.expires_on)
    )
    if owed_first or credential.kind.renews_every_days:
        return f"{what} due"
    return f"{what} expires"


@dataclass(frozen=True)
class Clock:
    """A kind of clock on the caseload: where it is stored and how it reads."""

    kind: str
    queryset: Callable[[], QuerySet]
    profile: str  # the path from the object to its profile
    moment: str  # the deadline field
    fields: tuple[str, ...]  # what `step` reads
    step: Callable


CLOCKS = [
    Clock(
        "grant",
        lambda: AccessGrant.objects.filter(state__in=AccessGrant.OPEN_STATES),
        "profile",
        "deadline",
        ("method",),
        _grant_step,
    ),
    Clock(
        "round",
        lambda: SignatureRound.objects.filter(state__in=SignatureRound.OPEN_STATES),
        "enrollment__profile",
        "deadline",
        ("number",),
        _round_step,
    ),
    Clock(
        "development",
        lambda: DevelopmentRequest.objects.filter(state__in=DevelopmentRequest.OPEN_STATES),
        "enrollment__profile",
        "deadline",
        (),
        lambda request: "development response due",
    ),
    Clock(
        "reconsideration",
        lambda: Enrollment.objects.filter(reconsideration=Enrollment.Reconsideration.OPEN),
        "profile",
        "reconsideration_deadline",
        (),
        lambda enrollment: "reconsideration window closes",
    ),
    Clock(
        "revalidation",
        lambda: Enrollment.objects.filter(revalidation_clock_running()),
        "profile",
        "deadline",
        (),
        lambda enrollment: "revalidation due",
    ),
    Clock(
        "credential",
        lambda: Credential.objects.filter(state__in=Credential.LIVE_STATES),
        "profile",
        "deadline",
        ("state", "due_on", "expires_on", "state_code", "kind__name", "kind__renews_every_days"),
        _credential_step,
    ),
]


def _follow(obj, path: str):
    for name in path.split("__"):
        obj = getattr(obj, name)
    return obj


def _client_path(client: Client) -> str:
    return reverse("client_detail", kwargs={"public_id": client.public_id})


# --- the deadlines of a person ----------------------------------------------------------


def _window(membership: Membership, now: datetime) -> tuple[datetime, datetime]:
    zone = membership.firm.zone
    today = now.astimezone(zone).date()
    start = datetime.combine(today - timedelta(days=PAST_DAYS), time.min, tzinfo=zone)
    end = datetime.combine(today + timedelta(days=FUTURE_DAYS + 1), time.min, tzinfo=zone)
    return start, end


def caseload_deadlines(membership: Membership, start: datetime, end: datetime) -> list[Deadline]:
    """The open clocks of a staff member's caseload between `start` and `end`: one query per
    kind of clock (each its soonest MAX_EVENTS), whatever the number of clients."""
    deadlines = []
    for clock in CLOCKS:
        client = f"{clock.profile}__client"
        mine = Q(**{f"{client}__assigned_staff": membership.user})
        if membership.is_admin:
            mine |= Q(**{f"{client}__assigned_staff__isnull": True})
        related = [f"{clock.profile}__client", f"{clock.profile}__organization"]
        if "kind__name" in clock.fields:
            related.append("kind")
        rows = (
            clock.queryset()
            .filter(mine, firm=membership.firm)
            .filter(**{f"{clock.moment}__gte": start, f"{clock.moment}__lt": end})
            .select_related(*related)
            # Only what the event shows: the client's NPI, email and notes are never read.
            .only(
                "public_id",
                clock.moment,
                *clock.fields,
                f"{clock.profile}__kind",
                f"{client}__last_name",
                f"{client}__public_id",
                f"{clock.profile}__organization__legal_name",
            )
            .order_by(clock.moment, "pk")[:MAX_EVENTS]
        )
        for row in rows:
            profile: Profile = _follow(row, clock.profile)
            deadlines.append(
                Deadline(
                    kind=clock.kind,
                    public_id=row.public_id,
                    moment=getattr(row, clock.moment),
                    last_name=profile.client.last_name,
                    profile_label=profile.label,
                    step=clock.step(row),
                    path=_client_path(profile.client),
                )
            )
    return deadlines


def todo_deadlines(
    membership: Membership, start: datetime, end: datetime, now: datetime
) -> list[Deadline]:
    """A provider's or delegate's to-dos with a deadline between `start` and `end` (those
    they said are done wait with staff, and leave the calendar)."""
    cases = client_files(
        Client.objects.select_related("firm", "assigned_staff").filter(
            pk__in=clients_visible_to(membership).values("pk")
        )
    )
    path = reverse("dashboard")
    deadlines = []
    for case in cases:
        party = party_for(membership.user, case.client)
        for todo in todos_for(case, party, now=now):
            if todo.claimed or todo.deadline is None or not start <= todo.deadline < end:
                continue
            # The UID's kind is the to-do's ("signer", "grant"...), its id the step's own.
            if todo.signer is not None:
                step = _signer_step(todo.signer, todo.signature_round)
            elif todo.grant is not None:
                step = _grant_step(todo.grant)
            elif todo.development is not None:
                step = "development response due"
            elif todo.credential is not None:
                step = _credential_step(todo.credential)
            else:  # a to-do of a kind this feed does not know yet: its title says it
                step = todo.title
            deadlines.append(
                Deadline(
                    kind=todo.done_kind or "todo",
                    public_id=todo.object_public_id,
                    moment=todo.deadline,
                    last_name=case.client.last_name,
                    profile_label=todo.profile.label,
                    step=step,
                    path=path,
                )
            )
    return deadlines


def deadlines_for(membership: Membership, *, now: datetime | None = None) -> list[Deadline]:
    """The person's deadlines in the calendar's window, soonest first, at most MAX_EVENTS."""
    now = now or timezone.now()
    start, end = _window(membership, now)
    if membership.works_for_firm:
        deadlines = caseload_deadlines(membership, start, end)
    else:
        deadlines = todo_deadlines(membership, start, end, now)
    deadlines.sort(key=lambda deadline: (deadline.moment, deadline.uid))
    return deadlines[:MAX_EVENTS]


def feed_for(membership: Membership, *, now: datetime | None = None) -> bytes:
    """The iCalendar document of the person's deadlines: one all-day event per clock, on the
    deadline's date where the firm works."""
    now = now or timezone.now()
    firm = membership.firm
    calendar = icalendar.Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("x-wr-calname", f"{firm.name} deadlines")
    calendar.add("x-wr-timezone", firm.time_zone)
    # Ask calendar apps to look again hourly (most poll less often whatever this says).
    calendar.add("x-published-ttl", "PT1H")
    stamp = now.astimezone(UTC)
    for deadline in deadlines_for(membership, now=now):
        day = deadline.moment.astimezone(firm.zone).date()
        event = icalendar.Event()
        event.add("uid", deadline.uid)
        event.add("dtstamp", stamp)
        event.add("dtstart", day)
        event.add("dtend", day + timedelta(days=1))
        event.add("summary", f"{deadline.last_name}: {deadline.step}")
        url = settings.SITE_URL + deadline.path
        event.add("description", f"{deadline.profile_label}\n{url}")
        event.add("url", url)
        event.add("transp", "TRANSPARENT")  # a deadline, not a meeting: the day stays free
        calendar.add_component(event)
    return calendar.to_ical()


# --- the secret address -----------------------------------------------------------------

TOKEN_BYTES = 32  # 256 random bits: token_urlsafe makes 43 characters of them
TOKEN_LENGTH_MIN = 40


def feed_url(feed: CalendarFeed) -> str:
    return settings.SITE_URL + reverse("calendar_feed", kwargs={"token": feed.token})


@dataclass(frozen=True)
class FeedAddress:
    """What the Security page shows of a person's feed."""

    https: str
    webcal: str
    created_at: datetime


def feed_address(membership: Membership | None) -> FeedAddress | None:
    if membership is None:
        return None
    feed = CalendarFeed.objects.filter(firm=membership.firm, user=membership.user).first()
    if feed is None:
        return None
    https = feed_url(feed)
    return FeedAddress(
        https=https, webcal="webcal://" + https.split("://", 1)[1], created_at=feed.created_at
    )


def feed_by_token(token: str) -> tuple[CalendarFeed, Membership] | None:
    """The feed with this token and its owner's active membership, or None.

    The token is 256 random bits looked up through a unique index: the lookup's timing says
    nothing useful about a token nobody holds. Tokens that cannot be ours are refused before
    the query."""
    if not TOKEN_LENGTH_MIN <= len(token) <= CalendarFeed._meta.get_field("token").max_length:
        return None
    feed = CalendarFeed.objects.filter(token=token).first()
    if feed is None or not secrets.compare_digest(feed.token.encode(), token.encode()):
        return None
    membership = (
        Membership.objects.select_related("firm", "user")
        .filter(firm_id=feed.firm_id, user_id=feed.user_id, is_active=True, user__is_active=True)
        .first()
    )
    if membership is None:
        return None
    return feed, membership


@transaction.atomic
def calendar_feed_rotate(*, membership: Membership) -> tuple[CalendarFeed, bool]:
    """A new secret address for the person's feed (the first one, or a replacement): the old
    address stops working at once. True if the feed is new."""
    feed, created = CalendarFeed.objects.select_for_update().update_or_create(
        firm=membership.firm,
        user=membership.user,
        defaults={"token": secrets.token_urlsafe(TOKEN_BYTES), "created_at": timezone.now()},
    )
    audit.record(
        "calendar.created" if created else "calendar.rotated",
        actor=membership.user,
        firm=membership.firm,
        target=feed,
        target_label="Calendar feed",
    )
    return feed, created


@transaction.atomic
def calendar_feed_turn_off(*, membership: Membership) -> bool:
    """No feed any more: its address answers 404. False if there was none."""
    deleted, _ = CalendarFeed.objects.filter(firm=membership.firm, user=membership.user).delete()
    if deleted:
        audit.record(
            "calendar.turned_off",
            actor=membership.user,
            firm=membership.firm,
            target_label="Calendar feed",
        )
    return bool(deleted)


def calendar_feed_fetched(*, feed: CalendarFeed, membership: Membership) -> None:
    """A calendar app read the feed: a read of client data, kept in the audit trail."""
    audit.record(
        "calendar.fetched",
        actor=membership.user,
        firm=membership.firm,
        target=feed,
        target_label="Calendar feed",
    )
