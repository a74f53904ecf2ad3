"""The case file: a client's work as every page reads it (the caseload row, the client page,
the provider's to-dos, the status report).

`client_files` loads it for any number of clients in a fixed number of queries and returns
typed records: each profile with its access grants, its enrollments with their signature
rounds and development requests, its credentials; for every open step, the moves staff may
make now (`workflows.moves`, from the workflows' TRANSITIONS); and `open_items`, the one
reading of what is open and who holds the ball. Pages and templates ask these records, never
the states.

Without `history`, only what is live is loaded (the caseload and the to-dos): grants open or
active, enrollments open, rejected or with a reconsideration window open, and their open
rounds and requests. With it, everything (the client page and the status report show the
closed attempts too); the parts that need it refuse to answer without it.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property

from django.db.models import Count, Prefetch, Q, QuerySet, prefetch_related_objects
from django.utils import timezone

from clients.models import NO_DEADLINE, Client, Delegate, DelegateRole, Official, Profile

from .deadlines import renewal_horizon, status_of
from .models import (
    AccessGrant,
    Credential,
    DevelopmentRequest,
    Enrollment,
    Holder,
    SignatureRound,
    Signer,
    started_again,
)
from .moves import DEVELOPMENT_MOVES, GRANT_MOVES, ROUND_MOVES, SIGNER_CONFIRM, allowed


class NotLoaded(LookupError):
    """A part of the case file was asked of one loaded without it (`history`, `delegates`,
    `signers`)."""


# --- steps ------------------------------------------------------------------------------


@dataclass(frozen=True)
class GrantStep:
    grant: AccessGrant
    actions: frozenset[str]  # GRANT_MOVES allowed now


@dataclass(frozen=True)
class SignerStep:
    signer: Signer
    may_confirm: bool  # confirmed on its own: a round with several signers


@dataclass(frozen=True)
class RoundStep:
    signature_round: SignatureRound
    _signers: list[SignerStep] | None  # None: loaded without signers (signers=False)
    _actions: frozenset[str] | None  # ROUND_MOVES allowed now (some read the signers)

    @property
    def signers(self) -> list[SignerStep]:
        if self._signers is None:
            raise NotLoaded("signers were not loaded with this case file (signers=False).")
        return self._signers

    @property
    def actions(self) -> frozenset[str]:
        if self._actions is None:
            raise NotLoaded("a round's moves need its signers (signers=False).")
        return self._actions


@dataclass(frozen=True)
class DevelopmentStep:
    request: DevelopmentRequest
    actions: frozenset[str]  # DEVELOPMENT_MOVES allowed now


@dataclass(frozen=True)
class EnrollmentFile:
    enrollment: Enrollment
    rounds: list[RoundStep]  # by number
    developments: list[DevelopmentStep]  # by number

    @property
    def open_rounds(self) -> list[RoundStep]:
        return [r for r in self.rounds if r.signature_round.is_open]

    @property
    def open_developments(self) -> list[DevelopmentStep]:
        return [d for d in self.developments if d.request.is_open]

    # What staff may do to the application itself now.
    @property
    def may_open_round(self) -> bool:
        """A signature round (the first, a revision, or a corrected resubmission)."""
        state = Enrollment.State(self.enrollment.state)
        if state == Enrollment.State.REJECTED:
            return self.resubmits
        return Enrollment.State.AWAITING_SIGNATURE in Enrollment.TRANSITIONS[state]

    @property
    def round_is_revision(self) -> bool:
        """A round opened now follows a submission: it says what changed."""
        return self.enrollment.state != Enrollment.State.PREPARING

    @property
    def resubmits(self) -> bool:
        """A round opened now is the corrected resubmission of a rejected application (one
        not followed by a newer application of its kind: `started_again`)."""
        return (
            self.enrollment.state == Enrollment.State.REJECTED and not self.enrollment.started_again
        )

    @property
    def may_record_development(self) -> bool:
        """A development request follows a submission."""
        return self.enrollment.state in Enrollment.DEVELOPMENT_STATES

    @cached_property
    def outcome_choices(self) -> list[tuple[str, str]]:
        return self.enrollment.outcome_choices()

    @cached_property
    def staff_moves(self) -> list[tuple[str, str]]:
        return self.enrollment.staff_moves()

    @property
    def is_worked_on(self) -> bool:
        """Open, or rejected and to resubmit: staff have something to do or to set on it."""
        return self.enrollment.is_open or self.resubmits

    @property
    def reconsideration_actions(self) -> frozenset[str]:
        current = Enrollment.Reconsideration(self.enrollment.reconsideration)
        return frozenset(Enrollment.RECONSIDERATION_MOVES.get(current, set()))


@dataclass
class ProfileFile:
    profile: Profile
    grants: list[GrantStep]  # newest first: every attempt with history, else the live one
    enrollments: list[EnrollmentFile]
    credentials: list[Credential]  # not cancelled, with `file_count`
    officials: list[Official]  # the organization's active officials (with history)
    history: bool
    _retryable: list[AccessGrant] = field(default_factory=list)

    @property
    def live_grant(self) -> GrantStep | None:
        """The attempt in progress, or the active one."""
        return next(
            (step for step in self.grants if step.grant.state in AccessGrant.LIVE_STATES),
            None,
        )

    @property
    def is_connected(self) -> bool:
        live = self.live_grant
        return live is not None and live.grant.state == AccessGrant.State.ACTIVE

    @property
    def pending_grants(self) -> list[AccessGrant]:
        """The provider's move on access (or they said they made it)."""
        return [s.grant for s in self.grants if s.grant.state in AccessGrant.PENDING_STATES]

    @property
    def open_enrollments(self) -> list[EnrollmentFile]:
        return [e for e in self.enrollments if e.enrollment.is_open]

    @property
    def enrollments_with_work(self) -> list[EnrollmentFile]:
        """Open, rejected (to resubmit) or denied with a reconsideration window open."""
        return [
            e
            for e in self.enrollments
            if e.enrollment.is_open or e.resubmits or e.enrollment.reconsideration_window_open
        ]

    @property
    def current_revalidation(self) -> Enrollment | None:
        """The revalidation that carries the profile's due date: open, or rejected and to
        resubmit (the one a new due date updates)."""
        return next(
            (
                e.enrollment
                for e in self.enrollments
                if e.enrollment.kind == Enrollment.Kind.REVALIDATION
                and (e.enrollment.is_open or e.resubmits)
            ),
            None,
        )

    def _needs_history(self, what: str) -> None:
        if not self.history:
            raise NotLoaded(f"{what} needs the case file loaded with history=True.")

    @property
    def retryable(self) -> list[AccessGrant]:
        """Expired or rejected attempts not sent again yet: "Send again"."""
        self._needs_history("retryable")
        return self._retryable

    @property
    def earlier_grants(self) -> list[AccessGrant]:
        self._needs_history("earlier_grants")
        live = self.live_grant
        return [s.grant for s in self.grants if live is None or s.grant.pk != live.grant.pk]

    @property
    def shown_grant(self) -> AccessGrant | None:
        """The attempt to show: the live one, else the latest closed one."""
        self._needs_history("shown_grant")
        live = self.live_grant
        if live is not None:
            return live.grant
        return self.grants[0].grant if self.grants else None


# --- what is open, and who holds the ball -----------------------------------------------


@dataclass
class OpenItem:
    """One open workflow step of a client, as a caseload row shows it."""

    label: str
    state: str
    holder: str
    deadline: datetime | None
    since: datetime
    is_paper: bool = False


# Credentials listed as open: what the provider owes or sent, and one near or past its
# expiry (on file and far from it: nothing to do).
CREDENTIAL_ITEM_STATUSES = {
    "requested": Holder.PROVIDER,
    "rejected": Holder.PROVIDER,
    "received": Holder.FIRM,
    "expiring": Holder.PROVIDER,
    "expired": Holder.PROVIDER,
}


@dataclass
class CredentialRow:
    """A credential as the client page and the status report list it."""

    credential: Credential
    profile: Profile
    status: str  # requested, received, accepted, rejected, expiring, expired
    status_label: str


@dataclass
class ClientFile:
    client: Client
    profiles: list[ProfileFile]
    history: bool
    _delegates: list[Delegate] | None  # None: not loaded (the caseload does not show them)

    @property
    def delegates(self) -> list[Delegate]:
        """The active delegates, with their roles."""
        if self._delegates is None:
            raise NotLoaded("delegates were not loaded with this case file (delegates=False).")
        return self._delegates

    @property
    def connected(self) -> int:
        """Profiles with active access: "2 of 2 profiles connected"."""
        return sum(1 for profile in self.profiles if profile.is_connected)

    @cached_property
    def open_items(self) -> list[OpenItem]:
        """What is open for this client, soonest deadline first."""
        firm = self.client.firm
        items = []
        for profile_file in self.profiles:
            profile = profile_file.profile
            items += _access_items(profile_file)
            for enrollment_file in profile_file.enrollments_with_work:
                items += _enrollment_items(enrollment_file, profile)
            for credential in profile_file.credentials:
                row = CredentialRow(credential, profile, *status_of(credential, firm))
                if row.status in CREDENTIAL_ITEM_STATUSES:
                    items.append(_credential_item(row))
        items.sort(key=lambda item: (item.deadline is None, item.deadline or NO_DEADLINE))
        return items

    @property
    def overdue(self) -> int:
        now = timezone.now()
        return sum(1 for item in self.open_items if item.deadline and item.deadline < now)

    @property
    def by_holder(self) -> list[tuple[str, int]]:
        """("Provider", 3), ... largest first."""
        holders: dict[str, int] = {}
        for item in self.open_items:
            holders[item.holder] = holders.get(item.holder, 0) + 1
        return sorted(holders.items(), key=lambda pair: -pair[1])

    @property
    def next_item(self) -> OpenItem | None:
        items = self.open_items
        return items[0] if items and items[0].deadline else None

    def credential_rows(self, now: datetime | None = None) -> list[CredentialRow]:
        """The client's credentials, soonest clock first (those without one last, by name)."""
        firm = self.client.firm
        rows = [
            CredentialRow(credential, profile_file.profile, *status_of(credential, firm, now))
            for profile_file in self.profiles
            for credential in profile_file.credentials
        ]
        rows.sort(
            key=lambda row: (
                row.credential.deadline is None,
                row.credential.deadline or NO_DEADLINE,
                row.credential.kind.name,
            )
        )
        return rows

    @property
    def officials(self) -> list[Official]:
        return [official for profile in self.profiles for official in profile.officials]

    @property
    def individual(self) -> ProfileFile:
        return next(p for p in self.profiles if p.profile.is_individual)


def _access_items(profile_file: ProfileFile) -> list[OpenItem]:
    live = profile_file.live_grant
    if live is None or live.grant.state == AccessGrant.State.ACTIVE:
        return []
    grant = live.grant
    holder = Holder.PROVIDER if grant.state == AccessGrant.State.AWAITING_PROVIDER else Holder.FIRM
    return [
        OpenItem(
            label=f"Access · {profile_file.profile.label}",
            state=grant.get_state_display(),
            holder=holder.label,
            deadline=grant.deadline,
            since=grant.state_entered_at,
        )
    ]


def _enrollment_items(enrollment_file: EnrollmentFile, profile: Profile) -> list[OpenItem]:
    enrollment = enrollment_file.enrollment
    if enrollment_file.resubmits:
        return [
            OpenItem(
                label=f"{enrollment.get_kind_display()} · {profile.label}",
                state="Rejected: resubmit it corrected",
                holder=Holder.FIRM.label,
                # a revalidation's due date still runs: a rejection did not meet it
                deadline=enrollment.deadline if enrollment.revalidation_clock_runs else None,
                since=enrollment.state_entered_at,
            )
        ]
    if enrollment.reconsideration_window_open:
        return [
            OpenItem(
                label=f"Reconsideration · {profile.label}",
                state="Denied: reconsideration window open",
                holder=Holder.FIRM.label,
                deadline=enrollment.reconsideration_deadline,
                since=enrollment.state_entered_at,
            )
        ]
    items = []
    for step in enrollment_file.open_developments:
        request = step.request
        holder = (
            Holder.PROVIDER
            if request.provider_must_act and request.state == DevelopmentRequest.State.OPEN
            else Holder.FIRM
        )
        items.append(
            OpenItem(
                label=f"Development request {request.number} · {profile.label}",
                state=request.get_state_display(),
                holder=holder.label,
                deadline=request.deadline,
                since=request.state_entered_at,
            )
        )
    rounds = enrollment_file.open_rounds
    if rounds:
        signature_round = rounds[0].signature_round
        holder = {
            SignatureRound.State.AWAITING_SIGNATURE: Holder.PROVIDER,
            SignatureRound.State.PROVIDER_SAYS_SIGNED: Holder.FIRM,
            SignatureRound.State.MAILED: Holder.CMS,
        }[signature_round.state]
        items.append(
            OpenItem(
                label=f"Signature round {signature_round.number} · {profile.label}",
                state=signature_round.get_state_display(),
                holder=holder.label,
                deadline=signature_round.deadline,
                since=signature_round.state_entered_at,
                is_paper=signature_round.is_paper,
            )
        )
    elif not items:
        items.append(
            OpenItem(
                label=f"{enrollment.get_kind_display()} · {profile.label}",
                state=enrollment.get_state_display(),
                holder=enrollment.get_holder_display(),
                # a revalidation's due date, until it is submitted
                deadline=enrollment.deadline if enrollment.revalidation_clock_runs else None,
                since=enrollment.state_entered_at,
            )
        )
    return items


def _credential_item(row: CredentialRow) -> OpenItem:
    credential = row.credential
    holder = (
        Holder.FIRM
        if credential.state == Credential.State.RECEIVED
        else CREDENTIAL_ITEM_STATUSES[row.status]
    )
    return OpenItem(
        label=f"{credential} · {row.profile.label}",
        state=row.status_label,
        holder=holder.label,
        deadline=credential.deadline,
        since=credential.state_entered_at,
    )


# --- loading ----------------------------------------------------------------------------


def renewal_horizon_of(firms) -> int:
    """The longest of these firms' renewal horizons (days before an expiry it is a to-do)."""
    return max((renewal_horizon(firm) for firm in firms), default=0)


def _grouped(children: QuerySet, field: str, parents: dict) -> dict[int, list]:
    """`children` by the id of their `field` (in the queryset's order), each given that
    parent, so that reading `child.<field>` costs no query."""
    foreign_key = children.model._meta.get_field(field)
    groups: dict[int, list] = {}
    for child in children:
        parent_id = getattr(child, foreign_key.attname)
        foreign_key.set_cached_value(child, parents[parent_id])
        groups.setdefault(parent_id, []).append(child)
    return groups


@dataclass
class _Loaded:
    """The parts of the case files of some clients, by their parent's id."""

    profiles: dict[int, list[Profile]]
    grants: dict[int, list[AccessGrant]]
    enrollments: dict[int, list[Enrollment]]
    rounds: dict[int, list[SignatureRound]]
    developments: dict[int, list[DevelopmentRequest]]
    credentials: dict[int, list[Credential]]
    officials: dict[int, list[Official]]  # by organization (with history)
    signers: bool


def _load(
    clients: list[Client],
    firms: Iterable,
    *,
    history: bool,
    delegates: bool,
    signers: bool,
    enrollment_order: str,
) -> _Loaded:
    """One query per part, each filtered by the ids the part above it found. (Django's
    prefetch_related did the same with a third more time spent in its machinery, and hung
    its results on the instances: docs/performance.md.)"""
    grants = AccessGrant.objects.order_by("-created_at")
    enrollments = Enrollment.objects.annotate(started_again=started_again()).order_by(
        enrollment_order
    )
    rounds = SignatureRound.objects.order_by("number")
    developments = DevelopmentRequest.objects.order_by("number")
    credentials = Credential.objects.filter(state__in=Credential.LIVE_STATES).select_related("kind")
    if history:
        credentials = credentials.annotate(file_count=Count("files"))
        enrollments = enrollments.select_related("assigned_staff")
    else:
        grants = grants.filter(state__in=AccessGrant.LIVE_STATES)
        enrollments = enrollments.filter(
            Q(state__in=Enrollment.OPEN_STATES)
            | Q(state=Enrollment.State.REJECTED)
            | Q(reconsideration=Enrollment.Reconsideration.OPEN)
        )
        rounds = rounds.filter(state__in=SignatureRound.OPEN_STATES)
        developments = developments.filter(state__in=DevelopmentRequest.OPEN_STATES)
        # What the provider owes or sent, and what is on file near or past its expiry (a
        # day's margin for the firms' zones; `status_of` decides exactly).
        near = timezone.now() + timedelta(days=renewal_horizon_of(firms) + 1)
        credentials = credentials.filter(
            Q(state__in=[*Credential.OWED_STATES, Credential.State.RECEIVED])
            | Q(deadline__lte=near)
            | Q(expires_on__lte=near.date())
        )
    by_client = {client.pk: client for client in clients}
    profiles = Profile.objects.filter(client__in=list(by_client)).select_related("organization")
    profiles = _grouped(profiles, "client", by_client)
    by_profile = {profile.pk: profile for group in profiles.values() for profile in group}
    profile_ids = list(by_profile)
    enrollments = _grouped(enrollments.filter(profile__in=profile_ids), "profile", by_profile)
    by_enrollment = {e.pk: e for group in enrollments.values() for e in group}
    rounds = _grouped(
        rounds.filter(enrollment__in=list(by_enrollment)), "enrollment", by_enrollment
    )
    if signers:  # `signature_round.signers.all()`, as the moves and the to-dos read them
        prefetch_related_objects(
            [r for group in rounds.values() for r in group],
            Prefetch(
                "signers",
                queryset=Signer.objects.select_related("official__organization").order_by("pk"),
            ),
        )
    officials = {}
    if history:
        organizations = {
            p.organization_id: p.organization for p in by_profile.values() if p.organization_id
        }
        officials = _grouped(
            Official.objects.filter(is_active=True, organization__in=list(organizations))
            .select_related("delegate")
            .order_by("role", "name"),
            "organization",
            organizations,
        )
    if delegates:  # `client.delegates.all()`: the active ones, as `party_for` reads them
        active = Delegate.objects.filter(is_active=True).prefetch_related(
            Prefetch("roles", queryset=DelegateRole.objects.select_related("profile__organization"))
        )
        prefetch_related_objects(clients, Prefetch("delegates", queryset=active))
    return _Loaded(
        profiles=profiles,
        grants=_grouped(grants.filter(profile__in=profile_ids), "profile", by_profile),
        enrollments=enrollments,
        rounds=rounds,
        developments=_grouped(
            developments.filter(enrollment__in=list(by_enrollment)),
            "enrollment",
            by_enrollment,
        ),
        credentials=_grouped(credentials.filter(profile__in=profile_ids), "profile", by_profile),
        officials=officials,
        signers=signers,
    )


def client_files(
    clients: Iterable[Client],
    *,
    history: bool = False,
    delegates: bool = True,
    signers: bool = True,
    enrollment_order: str = "-created_at",
) -> list[ClientFile]:
    """The case files of `clients` (loaded with their firm and assigned staff), in their
    order: one query per part of the tree, whatever the number of clients. `delegates`:
    load the active delegates and their roles (who may act; the caseload shows neither).
    `signers`: load each round's signers, which its moves need (the caseload shows
    neither)."""
    clients = list(clients)
    firms = {client.firm_id: client.firm for client in clients}.values()
    loaded = _load(
        clients,
        firms,
        history=history,
        delegates=delegates,
        signers=signers,
        enrollment_order=enrollment_order,
    )
    return [_client_file(client, loaded, history, delegates) for client in clients]


def client_file(client: Client, *, history: bool = False, **options) -> ClientFile:
    return client_files([client], history=history, **options)[0]


def _client_file(client: Client, loaded: _Loaded, history: bool, delegates: bool) -> ClientFile:
    profiles = []
    for profile in loaded.profiles.get(client.pk, []):
        grants = loaded.grants.get(profile.pk, [])
        profiles.append(
            ProfileFile(
                profile=profile,
                grants=[GrantStep(g, _grant_actions(g)) for g in grants],
                enrollments=[
                    _enrollment_file(e, loaded) for e in loaded.enrollments.get(profile.pk, [])
                ],
                credentials=loaded.credentials.get(profile.pk, []),
                officials=loaded.officials.get(profile.organization_id, []),
                history=history,
                _retryable=[
                    g
                    for g in grants
                    if g.state in AccessGrant.RETRYABLE_STATES
                    and not any(other.previous_id == g.pk for other in grants)
                ],
            )
        )
    return ClientFile(
        client=client,
        profiles=profiles,
        history=history,
        _delegates=list(client.delegates.all()) if delegates else None,
    )


def _grant_actions(grant: AccessGrant) -> frozenset[str]:
    return allowed(GRANT_MOVES, grant) if grant.is_open else frozenset()


def _enrollment_file(enrollment: Enrollment, loaded: _Loaded) -> EnrollmentFile:
    rounds = []
    for signature_round in loaded.rounds.get(enrollment.pk, []):
        if not loaded.signers:
            rounds.append(RoundStep(signature_round, _signers=None, _actions=None))
            continue
        signers = list(signature_round.signers.all())
        several = len(signers) > 1 and signature_round.is_open
        rounds.append(
            RoundStep(
                signature_round,
                _signers=[
                    SignerStep(
                        signer,
                        may_confirm=several
                        and not signer.has_signed
                        and SIGNER_CONFIRM.allows(signer),
                    )
                    for signer in signers
                ],
                _actions=allowed(ROUND_MOVES, signature_round)
                if signature_round.is_open
                else frozenset(),
            )
        )
    return EnrollmentFile(
        enrollment=enrollment,
        rounds=rounds,
        developments=[
            DevelopmentStep(d, allowed(DEVELOPMENT_MOVES, d) if d.is_open else frozenset())
            for d in loaded.developments.get(enrollment.pk, [])
        ],
    )
