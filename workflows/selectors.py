"""The caseload's query: which of the firm's clients a member sees, filtered and ordered, and
each client's stored next deadline. A page of it is read as case files (`casefile`), in a
fixed number of queries whatever the number of clients."""

from dataclasses import dataclass
from datetime import timedelta

from django.core.paginator import EmptyPage, Page, Paginator
from django.db.models import (
    Case,
    Exists,
    F,
    OuterRef,
    Q,
    QuerySet,
    When,
)
from django.db.models.functions import Lower
from django.utils import timezone

from clients.models import NO_DEADLINE, Client
from portal.models import Firm, Membership

from .casefile import client_files
from .deadlines import renewal_horizon
from .models import (
    AccessGrant,
    Credential,
    DevelopmentRequest,
    Enrollment,
    Holder,
    SignatureRound,
    revalidation_clock_running,
    superseded,
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
        Enrollment.objects.filter(
            profile__client=OuterRef("pk"), state=Enrollment.State.REJECTED
        ).exclude(superseded())
    ),
    "revalidation": lambda: Exists(
        Enrollment.objects.filter(revalidation_clock_running(), profile__client=OuterRef("pk"))
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


def _credentials_to_renew(firm: Firm):
    """On file (or with its renewal asked for) and near or past its expiry, as `status_of`
    reads it: the provider's to renew, unless they sent a document the firm has to review."""
    horizon = timezone.now().astimezone(firm.zone).date() + timedelta(days=renewal_horizon(firm))
    return _credentials(state__in=Credential.LIVE_STATES, expires_on__lte=horizon).exclude(
        state=Credential.State.RECEIVED
    )


# Who holds the ball, as the case file's open items say it (`casefile.open_items`).
HOLDER_FILTERS = {
    Holder.PROVIDER: lambda firm: (
        STAGE_FILTERS["access_pending"]()
        | STAGE_FILTERS["signature_pending"]()
        | Exists(_open_enrollments(holder=Holder.PROVIDER))
        | Exists(_open_development(holder=Holder.PROVIDER, state=DevelopmentRequest.State.OPEN))
        | Exists(_credentials(state__in=Credential.OWED_STATES))
        | Exists(_credentials_to_renew(firm))
    ),
    Holder.FIRM: lambda firm: (
        STAGE_FILTERS["verify"]()
        | Exists(_open_grants(state=AccessGrant.State.PREPARED))
        | Exists(_open_enrollments(holder=Holder.FIRM))
        | Exists(_open_development(holder=Holder.FIRM))
        | Exists(_reconsideration_open())
        | STAGE_FILTERS["rejected"]()
        | Exists(_credentials(state=Credential.State.RECEIVED))
    ),
    Holder.CMS: lambda firm: (
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
        queryset = queryset.filter(HOLDER_FILTERS[filters.holder](membership.firm))
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
    """One numbered page of the caseload in the filters' order, as case files (a page past
    the last one: the last one). Its paginator knows the result count (one COUNT, which the page's
    "42 clients" needs anyway).

    Numbered pages are an OFFSET: page 20 reads the 475 index entries before it, in order
    (the keyset cursor this replaced filtered the same 475 rows: 0.57 ms for the whole page
    at L, docs/performance.md). Every order but "deadline, latest first" and the secondary
    keys of a tie follows an index of the firm's clients."""
    queryset = (
        caseload_matching(membership=membership, filters=filters)
        .select_related("assigned_staff")
        .order_by(*caseload_order(filters.sort))
    )
    paginator = Paginator(queryset, page_size)
    try:
        found = paginator.page(page)
    except EmptyPage:
        found = paginator.page(paginator.num_pages)
    clients = list(found.object_list)
    for client in clients:  # every one is the member's firm's: one instance, not one a row
        client.firm = membership.firm
    found.object_list = client_files(clients, delegates=False, signers=False)
    return found
