"""Reads the caseload and client pages share. Each runs a fixed number of queries, whatever
the number of clients: one for the page of clients, a handful of prefetches for their rows."""

import copy
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core.paginator import EmptyPage, Page, Paginator
from django.db.models import (
    Case,
    Count,
    DateTimeField,
    Exists,
    F,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce, Least, Lower
from django.utils import timezone

from clients.models import NO_DEADLINE, Client, Delegate, DelegateRole, Official, Profile
from portal.models import Membership

from .deadlines import status_of
from .models import (
    AccessGrant,
    Credential,
    DevelopmentRequest,
    Enrollment,
    Holder,
    SignatureRound,
    Signer,
)

PAGE_SIZE = 25

STAGES = {
    "access_pending": "Access: waiting for the provider",
    "verify": "To verify: provider says done",
    "signature_pending": "Signature: waiting for the provider",
    "paper": "Wet signature (upload or mail)",
    "preparing": "Enrollment: preparing",
    "submitted": "Enrollment: with the contractor",
    "in_development": "Enrollment: in development",
    "reconsideration": "Denied: reconsideration window open",
    "rejected": "Rejected: to resubmit corrected",
    "revalidation": "Revalidation: due date set",
    "credential_expiring": "Credential: expiring or expired",
    "document_requested": "Document: requested or to review",
}


def _open_grants(**lookup):
    return AccessGrant.objects.filter(profile__client=OuterRef("pk"), **lookup)


def _open_rounds(**lookup):
    return SignatureRound.objects.filter(enrollment__profile__client=OuterRef("pk"), **lookup)


def _open_enrollments(**lookup):
    return Enrollment.objects.filter(
        profile__client=OuterRef("pk"), state__in=Enrollment.OPEN_STATES, **lookup
    )


STAGE_FILTERS = {
    "access_pending": lambda: Exists(_open_grants(state=AccessGrant.State.AWAITING_PROVIDER)),
    "verify": lambda: (
        Exists(_open_grants(state=AccessGrant.State.PROVIDER_SAYS_DONE))
        | Exists(_open_rounds(state=SignatureRound.State.PROVIDER_SAYS_SIGNED))
    ),
    "signature_pending": lambda: Exists(
        _open_rounds(state=SignatureRound.State.AWAITING_SIGNATURE)
    ),
    "paper": lambda: Exists(
        _open_rounds(
            state__in=SignatureRound.OPEN_STATES,
            method__in=[SignatureRound.Method.UPLOAD, SignatureRound.Method.PAPER],
        )
    ),
    "preparing": lambda: Exists(_open_enrollments(state=Enrollment.State.PREPARING)),
    "submitted": lambda: Exists(_open_enrollments(state=Enrollment.State.SUBMITTED)),
    "in_development": lambda: Exists(_open_enrollments(state=Enrollment.State.IN_DEVELOPMENT)),
    "reconsideration": lambda: Exists(_reconsideration_open()),
    "rejected": lambda: Exists(
        Enrollment.objects.filter(profile__client=OuterRef("pk"), state=Enrollment.State.REJECTED)
    ),
    "revalidation": lambda: Exists(
        Enrollment.objects.filter(
            profile__client=OuterRef("pk"),
            state__in=Enrollment.REVALIDATION_CLOCK_STATES,
            deadline__isnull=False,
        )
    ),
    "credential_expiring": lambda: Exists(
        _credentials(
            state=Credential.State.ACCEPTED,
            deadline__lte=timezone.now() + timedelta(days=CREDENTIAL_FILTER_DAYS),
        )
    ),
    "document_requested": lambda: Exists(
        _credentials(state__in=[*Credential.OWED_STATES, Credential.State.RECEIVED])
    ),
}

# "Expiring" on the caseload filter: within the stuck report's default month.
CREDENTIAL_FILTER_DAYS = 30


def _credentials(**lookup):
    return Credential.objects.filter(profile__client=OuterRef("pk"), **lookup)


def _open_development(**lookup):
    return DevelopmentRequest.objects.filter(
        enrollment__profile__client=OuterRef("pk"),
        state__in=DevelopmentRequest.OPEN_STATES,
        **lookup,
    )


def _reconsideration_open():
    return Enrollment.objects.filter(
        profile__client=OuterRef("pk"), reconsideration=Enrollment.Reconsideration.OPEN
    )


HOLDER_FILTERS = {
    Holder.PROVIDER: lambda: (
        STAGE_FILTERS["access_pending"]()
        | STAGE_FILTERS["signature_pending"]()
        | Exists(_open_enrollments(holder=Holder.PROVIDER))
        | Exists(_open_development(holder=Holder.PROVIDER, state=DevelopmentRequest.State.OPEN))
        | Exists(_credentials(state__in=Credential.OWED_STATES))
    ),
    Holder.FIRM: lambda: (
        STAGE_FILTERS["verify"]()
        | Exists(_open_grants(state=AccessGrant.State.PREPARED))
        | Exists(_open_enrollments(holder=Holder.FIRM))
        | Exists(_open_development(holder=Holder.FIRM))
        | Exists(_reconsideration_open())
        | STAGE_FILTERS["rejected"]()
        | Exists(_credentials(state=Credential.State.RECEIVED))
    ),
    Holder.CMS: lambda: (
        Exists(_open_enrollments(holder=Holder.CMS))
        | Exists(_open_rounds(state=SignatureRound.State.MAILED))
    ),
}


@dataclass(frozen=True)
class CaseloadFilters:
    assignee: str = ""  # "" = default scope, "all", "none", or a member's public id
    stage: str = ""
    holder: str = ""
    due_within: int | None = None
    overdue: bool = False
    q: str = ""
    sort: str = "urgency"  # a key of CASELOAD_SORTS, "-" in front for the other way

    @property
    def narrowing(self) -> int:
        """How many filters narrow the list (the folded panel says "2 on")."""
        return sum(
            1
            for on in (
                self.assignee not in ("", "all"),
                self.stage,
                self.holder,
                self.due_within is not None,
                self.overdue,
                self.q,
            )
            if on
        )


# The caseload's orders: each key with what it says, ascending and descending (the column
# header's first click is ascending). Every order ends with the primary key, so that
# numbered pages never show a client twice or skip one.
CASELOAD_SORTS = {
    "urgency": ("most urgent first", "least urgent first"),
    "name": ("by name, A to Z", "by name, Z to A"),
    "deadline": ("soonest deadline first", "latest deadline first"),
    "activity": ("least recent activity first", "most recent activity first"),
}
SORT_CHOICES = [
    (f"{prefix}{key}", words[index])
    for key, words in CASELOAD_SORTS.items()
    for index, prefix in enumerate(("", "-"))
]


def parse_sort(sort: str) -> tuple[str, bool]:
    """ "-name" -> ("name", True); anything unknown -> the default, most urgent first."""
    key = sort.removeprefix("-")
    if key not in CASELOAD_SORTS:
        return "urgency", False
    return key, sort.startswith("-")


def caseload_order(sort: str) -> list:
    """The ORDER BY of a caseload sort.

    - urgency: the soonest open clock first (overdue ones first, the most overdue first);
      clients with no clock after them, the longest untouched first. The stored next
      deadline makes it an index scan in order (clients_client_caseload / _urgency).
    - deadline: by the date alone; clients with no clock last either way, by name.
    - name: surname, then first name (case-insensitive, clients_client_name).
    - activity: when anything last happened on the file (clients_client_activity).
    """
    key, descending = parse_sort(sort)

    def way(name):
        return F(name).desc() if descending else F(name).asc()

    if key == "deadline":
        by_name = [Lower("last_name").asc(), Lower("first_name").asc(), F("pk").asc()]
        if not descending:  # "no deadline" is stored as the latest date: last already
            return [F("next_deadline").asc(), *by_name]
        no_clock_last = Case(When(next_deadline=NO_DEADLINE, then=1), default=0)
        return [no_clock_last.asc(), F("next_deadline").desc(), *by_name]
    if key == "name":
        name = [Lower("last_name"), Lower("first_name")]
        return [*(n.desc() if descending else n.asc() for n in name), way("pk")]
    if key == "activity":
        return [way("last_activity_at"), way("pk")]
    return [way("next_deadline"), way("last_activity_at"), way("pk")]


def soonest_open_deadline(
    grants=AccessGrant,
    rounds=SignatureRound,
    developments=DevelopmentRequest,
    enrollments=Enrollment,
    credentials=Credential,
) -> Least:
    """Each client's soonest open clock (an access request's, a signature round's, a
    development response's, a denial's reconsideration window, a revalidation's due date, a
    credential's request or expiry), or NO_DEADLINE: the value Client.next_deadline keeps.
    The models can be a migration's."""
    grant_deadline = Subquery(
        grants.objects.filter(
            profile__client=OuterRef("pk"),
            state__in=AccessGrant.OPEN_STATES,
            deadline__isnull=False,
        )
        .order_by("deadline")
        .values("deadline")[:1],
        output_field=DateTimeField(),
    )
    round_deadline = Subquery(
        rounds.objects.filter(
            enrollment__profile__client=OuterRef("pk"), state__in=SignatureRound.OPEN_STATES
        )
        .order_by("deadline")
        .values("deadline")[:1],
        output_field=DateTimeField(),
    )
    development_deadline = Subquery(
        developments.objects.filter(
            enrollment__profile__client=OuterRef("pk"),
            state__in=DevelopmentRequest.OPEN_STATES,
        )
        .order_by("deadline")
        .values("deadline")[:1],
        output_field=DateTimeField(),
    )
    reconsideration_deadline = Subquery(
        enrollments.objects.filter(
            profile__client=OuterRef("pk"), reconsideration=Enrollment.Reconsideration.OPEN
        )
        .order_by("reconsideration_deadline")
        .values("reconsideration_deadline")[:1],
        output_field=DateTimeField(),
    )
    revalidation_deadline = Subquery(
        enrollments.objects.filter(
            profile__client=OuterRef("pk"),
            state__in=Enrollment.REVALIDATION_CLOCK_STATES,
            deadline__isnull=False,
        )
        .order_by("deadline")
        .values("deadline")[:1],
        output_field=DateTimeField(),
    )
    credential_deadline = Subquery(
        credentials.objects.filter(
            profile__client=OuterRef("pk"),
            state__in=Credential.LIVE_STATES,
            deadline__isnull=False,
        )
        .order_by("deadline")
        .values("deadline")[:1],
        output_field=DateTimeField(),
    )
    none = Value(NO_DEADLINE, output_field=DateTimeField())
    return Least(
        Coalesce(grant_deadline, none),
        Coalesce(round_deadline, none),
        Coalesce(development_deadline, none),
        Coalesce(reconsideration_deadline, none),
        Coalesce(revalidation_deadline, none),
        Coalesce(credential_deadline, none),
    )


def refresh_next_deadline(clients: QuerySet, **also) -> int:
    """Recompute the stored next deadline of these clients (one UPDATE), with other fields."""
    return clients.update(next_deadline=soonest_open_deadline(), **also)


def row_prefetches() -> list[Prefetch]:
    """Open workflows per client row: profiles, their grants, enrollments and open rounds."""
    return [
        Prefetch(
            "profiles",
            queryset=Profile.objects.select_related("organization").prefetch_related(
                Prefetch(
                    "access_grants",
                    queryset=AccessGrant.objects.filter(
                        state__in=[*AccessGrant.OPEN_STATES, AccessGrant.State.ACTIVE]
                    ),
                    to_attr="live_grants",
                ),
                Prefetch(
                    "enrollments",
                    queryset=Enrollment.objects.filter(
                        Q(state__in=Enrollment.OPEN_STATES)
                        | Q(state=Enrollment.State.REJECTED)
                        | Q(reconsideration=Enrollment.Reconsideration.OPEN)
                    ).prefetch_related(
                        Prefetch(
                            "rounds",
                            queryset=SignatureRound.objects.filter(
                                state__in=SignatureRound.OPEN_STATES
                            ),
                            to_attr="open_rounds",
                        ),
                        Prefetch(
                            "development_requests",
                            queryset=DevelopmentRequest.objects.filter(
                                state__in=DevelopmentRequest.OPEN_STATES
                            ),
                            to_attr="open_developments",
                        ),
                    ),
                    to_attr="open_enrollments",
                ),
                live_credentials_prefetch(),
            ),
        )
    ]


def caseload_matching(*, membership: Membership, filters: CaseloadFilters) -> QuerySet:
    """The clients the caseload shows for these filters (in scope for this member)."""
    queryset = Client.objects.filter(firm=membership.firm)
    if not membership.is_admin:
        queryset = queryset.filter(assigned_staff=membership.user)
    elif filters.assignee == "none":
        queryset = queryset.filter(assigned_staff__isnull=True)
    elif filters.assignee not in ("", "all"):
        queryset = queryset.filter(assigned_staff__public_id=filters.assignee)
    if filters.stage in STAGE_FILTERS:
        queryset = queryset.filter(STAGE_FILTERS[filters.stage]())
    if filters.holder in HOLDER_FILTERS:
        queryset = queryset.filter(HOLDER_FILTERS[filters.holder]())
    if filters.q:
        term = filters.q.strip()
        queryset = queryset.filter(
            Q(last_name__icontains=term)
            | Q(first_name__icontains=term)
            | Q(npi=term)
            | Q(organizations__legal_name__icontains=term)
            | Q(organizations__npi=term)
        ).distinct()
    now = timezone.now()
    if filters.overdue:
        queryset = queryset.filter(next_deadline__lte=now)
    if filters.due_within is not None:
        queryset = queryset.filter(next_deadline__lte=now + timedelta(days=filters.due_within))
    return queryset


def caseload(
    *,
    membership: Membership,
    filters: CaseloadFilters,
    page: int = 1,
    page_size: int = PAGE_SIZE,
) -> Page:
    """One numbered page of the caseload in the filters' order (a page past the last one:
    the last one). Its paginator knows the result count (one COUNT, which the page's
    "42 clients" needs anyway).

    Numbered pages are an OFFSET: page 20 reads the 475 index entries before it, in order
    (the keyset cursor this replaced filtered the same 475 rows: 0.57 ms for the whole page
    at L, docs/performance.md). Every order but "deadline, latest first" and the secondary
    keys of a tie follows an index of the firm's clients."""
    queryset = (
        caseload_matching(membership=membership, filters=filters)
        .select_related("assigned_staff", "firm")
        .prefetch_related(*row_prefetches())
        .order_by(*caseload_order(filters.sort))
    )
    paginator = Paginator(queryset, page_size)
    try:
        found = paginator.page(page)
    except EmptyPage:
        found = paginator.page(paginator.num_pages)
    found.object_list = list(found.object_list)
    return found


@dataclass
class OpenItem:
    """One open workflow step of a client, as a caseload row shows it."""

    label: str
    state: str
    holder: str
    deadline: datetime | None
    since: datetime
    is_paper: bool = False


def open_items(client: Client, profiles: list[Profile] | None = None) -> list[OpenItem]:
    """From the prefetched rows: what is open for this client, soonest deadline first
    (`profiles`: the client's, shaped as `row_prefetches` loads them, when not prefetched)."""
    items = []
    for profile in client.profiles.all() if profiles is None else profiles:
        for grant in profile.live_grants:
            if grant.state == AccessGrant.State.ACTIVE:
                continue
            holder = (
                Holder.PROVIDER
                if grant.state == AccessGrant.State.AWAITING_PROVIDER
                else Holder.FIRM
            )
            items.append(
                OpenItem(
                    label=f"Access · {profile.label}",
                    state=grant.get_state_display(),
                    holder=Holder(holder).label,
                    deadline=grant.deadline,
                    since=grant.state_entered_at,
                )
            )
        for enrollment in profile.open_enrollments:
            rounds = enrollment.open_rounds
            if enrollment.state == Enrollment.State.REJECTED:
                items.append(
                    OpenItem(
                        label=f"{enrollment.get_kind_display()} · {profile.label}",
                        state="Rejected: resubmit it corrected",
                        holder=Holder.FIRM.label,
                        deadline=None,
                        since=enrollment.state_entered_at,
                    )
                )
                continue
            if enrollment.reconsideration_window_open:
                items.append(
                    OpenItem(
                        label=f"Reconsideration · {profile.label}",
                        state="Denied: reconsideration window open",
                        holder=Holder.FIRM.label,
                        deadline=enrollment.reconsideration_deadline,
                        since=enrollment.state_entered_at,
                    )
                )
                continue
            for request in enrollment.open_developments:
                holder = (
                    Holder.PROVIDER
                    if request.provider_must_act and request.state == DevelopmentRequest.State.OPEN
                    else Holder.FIRM
                )
                items.append(
                    OpenItem(
                        label=f"Development request {request.number} · {profile.label}",
                        state=request.get_state_display(),
                        holder=Holder(holder).label,
                        deadline=request.deadline,
                        since=request.state_entered_at,
                    )
                )
            if rounds:
                signature_round = rounds[0]
                holder = {
                    SignatureRound.State.AWAITING_SIGNATURE: Holder.PROVIDER,
                    SignatureRound.State.PROVIDER_SAYS_SIGNED: Holder.FIRM,
                    SignatureRound.State.MAILED: Holder.CMS,
                }[signature_round.state]
                items.append(
                    OpenItem(
                        label=f"Signature round {signature_round.number} · {profile.label}",
                        state=signature_round.get_state_display(),
                        holder=Holder(holder).label,
                        deadline=signature_round.deadline,
                        since=signature_round.state_entered_at,
                        is_paper=signature_round.is_paper,
                    )
                )
            elif not enrollment.open_developments:
                items.append(
                    OpenItem(
                        label=f"{enrollment.get_kind_display()} · {profile.label}",
                        state=enrollment.get_state_display(),
                        holder=enrollment.get_holder_display(),
                        # a revalidation's due date, until it is submitted
                        deadline=(
                            enrollment.deadline if enrollment.revalidation_clock_runs else None
                        ),
                        since=enrollment.state_entered_at,
                    )
                )
        items += _credential_items(client, profile)
    items.sort(key=lambda item: (item.deadline is None, item.deadline or NO_DEADLINE))
    return items


@dataclass(frozen=True)
class ClientSummary:
    """The head of a client's page: what is open, what is late, who holds the ball."""

    items: list[OpenItem]
    overdue: int
    by_holder: list[tuple[str, int]]  # ("Provider", 3), ... largest first

    @property
    def next_item(self) -> OpenItem | None:
        return self.items[0] if self.items and self.items[0].deadline else None


def client_summary(client: Client, profiles: list[Profile], now: datetime | None = None):
    """`open_items` for a client loaded by `client_with_history`: the caseload's rule for
    what is open, read from the page's full history (so one rule decides both)."""
    now = now or timezone.now()
    shaped = []
    for profile in profiles:
        view = copy.copy(profile)
        view.live_grants = [
            g
            for g in profile.all_grants
            if g.state in (*AccessGrant.OPEN_STATES, AccessGrant.State.ACTIVE)
        ]
        view.open_enrollments = []
        for enrollment in profile.all_enrollments:
            if not (
                enrollment.state in (*Enrollment.OPEN_STATES, Enrollment.State.REJECTED)
                or enrollment.reconsideration == Enrollment.Reconsideration.OPEN
            ):
                continue
            open_enrollment = copy.copy(enrollment)
            open_enrollment.open_rounds = [
                r for r in enrollment.all_rounds if r.state in SignatureRound.OPEN_STATES
            ]
            open_enrollment.open_developments = [
                d for d in enrollment.all_developments if d.state in DevelopmentRequest.OPEN_STATES
            ]
            view.open_enrollments.append(open_enrollment)
        shaped.append(view)
    items = open_items(client, shaped)
    holders: dict[str, int] = {}
    for item in items:
        holders[item.holder] = holders.get(item.holder, 0) + 1
    return ClientSummary(
        items=items,
        overdue=sum(1 for item in items if item.deadline and item.deadline < now),
        by_holder=sorted(holders.items(), key=lambda pair: -pair[1]),
    )


# Credentials the caseload row shows: what the provider owes or sent, and one near or past
# its expiry (on file and far from it: nothing to do).
CREDENTIAL_ITEM_STATUSES = {
    "requested": Holder.PROVIDER,
    "rejected": Holder.PROVIDER,
    "received": Holder.FIRM,
    "expiring": Holder.PROVIDER,
    "expired": Holder.PROVIDER,
}


def _credential_items(client: Client, profile: Profile) -> list[OpenItem]:
    items = []
    for credential in profile.live_credentials:
        status, label = status_of(credential, client.firm)
        if status not in CREDENTIAL_ITEM_STATUSES:
            continue
        items.append(
            OpenItem(
                label=f"{credential} · {profile.label}",
                state=label,
                holder=(
                    Holder.FIRM
                    if credential.state == Credential.State.RECEIVED
                    else CREDENTIAL_ITEM_STATUSES[status]
                ).label,
                deadline=credential.deadline,
                since=credential.state_entered_at,
            )
        )
    return items


def access_summary(client: Client) -> tuple[int, int]:
    """(profiles with active access, profiles): "2 of 2 profiles connected"."""
    profiles = list(client.profiles.all())
    connected = sum(
        1
        for profile in profiles
        if any(g.state == AccessGrant.State.ACTIVE for g in profile.live_grants)
    )
    return connected, len(profiles)


def live_credentials_prefetch(to_attr: str = "live_credentials") -> Prefetch:
    """A profile's credentials that are not cancelled, with their kind and how many
    versions of their document are kept."""
    return Prefetch(
        "credentials",
        queryset=Credential.objects.filter(state__in=Credential.LIVE_STATES)
        .select_related("kind")
        .annotate(file_count=Count("files")),
        to_attr=to_attr,
    )


def signer_prefetch() -> Prefetch:
    """A round's signers, with the officials they sign as (for rounds prefetched)."""
    return Prefetch(
        "signers",
        queryset=Signer.objects.select_related("official__organization").order_by("pk"),
    )


def client_with_history(enrollment_order: str = "-created_at") -> QuerySet:
    """A client with everything its page and its status report show, in a fixed number of
    queries whatever it holds: firm, assigned staff, portal account; profiles with their
    organization, every access grant (newest first), every enrollment (with its assignee)
    and its rounds; active delegates with their roles and the roles' profiles."""
    return Client.objects.select_related("firm", "assigned_staff", "user").prefetch_related(
        Prefetch(
            "profiles",
            queryset=Profile.objects.select_related("organization").prefetch_related(
                Prefetch(
                    "organization__officials",
                    queryset=Official.objects.filter(is_active=True).select_related(
                        "organization", "delegate"
                    ),
                    to_attr="active_officials",
                ),
                Prefetch(
                    "access_grants",
                    queryset=AccessGrant.objects.order_by("-created_at"),
                    to_attr="all_grants",
                ),
                Prefetch(
                    "enrollments",
                    queryset=Enrollment.objects.select_related("assigned_staff")
                    .order_by(enrollment_order)
                    .prefetch_related(
                        Prefetch(
                            "rounds",
                            queryset=SignatureRound.objects.order_by("number").prefetch_related(
                                signer_prefetch()
                            ),
                            to_attr="all_rounds",
                        ),
                        Prefetch(
                            "development_requests",
                            queryset=DevelopmentRequest.objects.order_by("number"),
                            to_attr="all_developments",
                        ),
                    ),
                    to_attr="all_enrollments",
                ),
                live_credentials_prefetch(),
            ),
        ),
        Prefetch(
            "delegates",
            queryset=Delegate.objects.filter(is_active=True).prefetch_related(
                Prefetch(
                    "roles", queryset=DelegateRole.objects.select_related("profile__organization")
                )
            ),
        ),
    )


@dataclass
class CredentialRow:
    """A credential as the client page and the status report list it."""

    credential: Credential
    profile: Profile
    status: str  # requested, received, accepted, rejected, expiring, expired
    status_label: str


def credential_rows(profiles, firm, *, now: datetime | None = None) -> list[CredentialRow]:
    """From the prefetched `live_credentials`: the client's credentials, soonest clock first
    (those without one last, by name)."""
    rows = [
        CredentialRow(credential, profile, *status_of(credential, firm, now))
        for profile in profiles
        for credential in profile.live_credentials
    ]
    rows.sort(
        key=lambda row: (
            row.credential.deadline is None,
            row.credential.deadline or NO_DEADLINE,
            row.credential.kind.name,
        )
    )
    return rows
