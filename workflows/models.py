"""The firm's work on each client: enrollments, access grants and signature rounds.

Each workflow's states and allowed moves are declared here, in one place per workflow; the
moves themselves are the service functions in `workflows/services.py`.
"""

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from clients.models import Client, CMSRole, Profile
from portal.models import Firm


class Holder(models.TextChoices):
    """Who holds the ball: whose move it is."""

    FIRM = "firm", "Firm"
    PROVIDER = "provider", "Provider"
    CMS = "cms", "CMS / contractor"


# Each workflow's states and the sets its partial indexes and constraints name are declared
# before its model: a nested `Meta` cannot see the model's own names.


def _values(states) -> list[str]:
    """A state set as a condition stores it (and its migration holds it): plain strings."""
    return [state.value for state in states]


class EnrollmentState(models.TextChoices):
    PREPARING = "preparing", "Preparing"
    AWAITING_SIGNATURE = "awaiting_signature", "Awaiting signature"
    SUBMITTED = "submitted", "Submitted"
    IN_DEVELOPMENT = "in_development", "In development (more information requested)"
    APPROVED = "approved", "Approved"
    DENIED = "denied", "Denied"
    # Rejected: e.g. unsigned within 20 days, or development not answered; the fix is a
    # corrected resubmission (a new submission and signature round on this application).
    REJECTED = "rejected", "Rejected (resubmit corrected)"
    # Returned as incomplete or ineligible: the fix is a new application.
    RETURNED = "returned", "Returned (new application needed)"
    WITHDRAWN = "withdrawn", "Withdrawn"


ENROLLMENT_OPEN = (
    EnrollmentState.PREPARING,
    EnrollmentState.AWAITING_SIGNATURE,
    EnrollmentState.SUBMITTED,
    EnrollmentState.IN_DEVELOPMENT,
)


class Enrollment(models.Model):
    """A Medicare enrollment application in PECOS for one profile."""

    class Kind(models.TextChoices):
        INITIAL = "initial", "Initial enrollment"
        REVALIDATION = "revalidation", "Revalidation"
        CHANGE = "change", "Change of information"
        REASSIGNMENT = "reassignment", "Reassignment"

    State = EnrollmentState
    OPEN_STATES = ENROLLMENT_OPEN
    # A revalidation's due date runs until the application reaches the contractor (being
    # prepared, waiting for a signature, or rejected and to resubmit); submitted, it is met.
    REVALIDATION_CLOCK_STATES = (State.PREPARING, State.AWAITING_SIGNATURE, State.REJECTED)
    # A development request follows a submission: recorded while the contractor has it.
    DEVELOPMENT_STATES = (State.SUBMITTED, State.IN_DEVELOPMENT)
    # What the contractor (or the firm, withdrawing) decided: recorded with its date.
    OUTCOMES = (State.APPROVED, State.DENIED, State.REJECTED, State.RETURNED, State.WITHDRAWN)
    # Opening a signature round moves the application to awaiting signature, and closing or
    # cancelling the round moves it on; a development request moves it in and out of
    # development; outcomes are recorded with their date; staff make the rest with "change
    # state". A denial is reversed (approved) only through a reconsideration.
    TRANSITIONS = {
        State.PREPARING: {State.AWAITING_SIGNATURE, State.SUBMITTED, State.WITHDRAWN},
        # Back where it was when a round closes or is cancelled (preparing, with the
        # contractor, in development), or an outcome that arrives meanwhile.
        State.AWAITING_SIGNATURE: {
            State.PREPARING,
            State.SUBMITTED,
            State.IN_DEVELOPMENT,
            State.APPROVED,
            State.DENIED,
            State.REJECTED,
            State.RETURNED,
            State.WITHDRAWN,
        },
        State.SUBMITTED: {
            State.AWAITING_SIGNATURE,
            State.IN_DEVELOPMENT,
            State.APPROVED,
            State.DENIED,
            State.REJECTED,
            State.RETURNED,
            State.WITHDRAWN,
        },
        State.IN_DEVELOPMENT: {
            State.AWAITING_SIGNATURE,
            State.SUBMITTED,
            State.APPROVED,
            State.DENIED,
            State.REJECTED,
            State.RETURNED,
            State.WITHDRAWN,
        },
        State.APPROVED: set(),
        State.DENIED: {State.APPROVED},
        State.REJECTED: {State.AWAITING_SIGNATURE, State.WITHDRAWN},
        State.RETURNED: set(),
        State.WITHDRAWN: set(),
    }
    # Who usually holds the ball in each state (staff may say otherwise, with a reason).
    DEFAULT_HOLDER = {
        State.PREPARING: Holder.FIRM,
        State.AWAITING_SIGNATURE: Holder.PROVIDER,
        State.SUBMITTED: Holder.CMS,
        State.IN_DEVELOPMENT: Holder.FIRM,
        State.APPROVED: Holder.FIRM,
        State.DENIED: Holder.FIRM,
        State.REJECTED: Holder.FIRM,
        State.RETURNED: Holder.FIRM,
        State.WITHDRAWN: Holder.FIRM,
    }

    class Reconsideration(models.TextChoices):
        """After a denial: the provider may ask for reconsideration within the letter's
        deadline (60 days by default); the firm files it, or decides not to."""

        NONE = "", "None"
        OPEN = "open", "Window open"
        FILED = "filed", "Filed, with the contractor"
        DECLINED = "declined", "Not requested"
        LAPSED = "lapsed", "Window closed, not requested"
        UPHELD = "upheld", "Denial upheld"
        REVERSED = "reversed", "Reversed: approved"

    RECONSIDERATION_MOVES = {
        Reconsideration.OPEN: {
            Reconsideration.FILED,
            Reconsideration.DECLINED,
            Reconsideration.LAPSED,
        },
        Reconsideration.FILED: {Reconsideration.UPHELD, Reconsideration.REVERSED},
    }

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    firm = models.ForeignKey(Firm, on_delete=models.CASCADE, related_name="enrollments")
    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="enrollments")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.INITIAL)
    state = models.CharField(max_length=24, choices=State.choices, default=State.PREPARING)
    holder = models.CharField(max_length=16, choices=Holder.choices, default=Holder.FIRM)
    holder_reason = models.CharField(max_length=200, blank=True)
    assigned_staff = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    follow_up_on = models.DateField(null=True, blank=True)
    tracking_number = models.CharField("PECOS tracking number", max_length=40, blank=True)
    # The outcome: the day of the decision at CMS (the letter's date), why, and for an
    # approval the effective date CMS granted.
    decided_on = models.DateField(null=True, blank=True)
    outcome_reason = models.CharField(max_length=300, blank=True)
    effective_date = models.DateField(null=True, blank=True)
    reconsideration = models.CharField(
        max_length=12, choices=Reconsideration.choices, blank=True, default=""
    )
    reconsideration_deadline = models.DateTimeField(null=True, blank=True)
    reconsideration_filed_on = models.DateField(null=True, blank=True)
    # A revalidation's due date at CMS (the last day of a month; the adjusted date when CMS
    # moved it), and its end in the firm's time zone: the clock the caseload sorts by.
    due_on = models.DateField("due at CMS", null=True, blank=True)
    deadline = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    state_entered_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # Open revalidations by due date: a clock like any other.
            models.Index(
                fields=["deadline"],
                condition=models.Q(state__in=_values(ENROLLMENT_OPEN), deadline__isnull=False),
                name="wf_enrollment_due",
            ),
            # Denials whose reconsideration window is running: a clock like any other.
            models.Index(
                fields=["reconsideration_deadline"],
                condition=models.Q(reconsideration="open"),
                name="wf_enrollment_reconsider_due",
            ),
            models.Index(
                fields=["firm", "state_entered_at"],
                condition=models.Q(state__in=_values(ENROLLMENT_OPEN)),
                name="wf_enrollment_open",
            ),
        ]
        constraints = [
            # One application of a kind at a time per profile: a double-submitted "Start
            # enrollment" cannot open a second (workflows/migrations/0002 builds it online).
            models.UniqueConstraint(
                fields=["profile", "kind"],
                condition=models.Q(state__in=_values(ENROLLMENT_OPEN)),
                name="wf_enrollment_one_open_per_kind",
            ),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} ({self.profile})"

    @property
    def is_open(self) -> bool:
        return self.state in self.OPEN_STATES

    @property
    def signers_needed(self) -> tuple[bool, bool]:
        """Who signs it (CMS): (the provider, an Authorized or Delegated Official of the
        organization). An individual application: the provider; an organizational one: an
        official; a reassignment of benefits to an organization: both."""
        if not self.profile.is_individual:
            return False, True
        return True, self.kind == self.Kind.REASSIGNMENT

    @property
    def revalidation_clock_runs(self) -> bool:
        """`revalidation_clock_running` for one application: a rejected one started again is
        known as such when loaded with `started_again` (the case file does)."""
        if self.deadline is None or self.state not in self.REVALIDATION_CLOCK_STATES:
            return False
        return not (self.state == self.State.REJECTED and getattr(self, "started_again", False))

    @property
    def reconsideration_window_open(self) -> bool:
        return self.reconsideration == self.Reconsideration.OPEN

    def staff_moves(self) -> list[tuple[str, str]]:
        """(state, label) staff may choose directly: signature rounds handle the signature,
        development requests the development, and outcomes are recorded with their date."""
        allowed = self.TRANSITIONS[self.State(self.state)] - {
            self.State.AWAITING_SIGNATURE,
            self.State.IN_DEVELOPMENT,
            *self.OUTCOMES,
        }
        if self.state in (self.State.AWAITING_SIGNATURE, self.State.IN_DEVELOPMENT):
            allowed -= {self.State.PREPARING, self.State.SUBMITTED}
        return [(state.value, state.label) for state in self.State if state in allowed]

    def outcome_choices(self) -> list[tuple[str, str]]:
        """The outcomes that may be recorded now (a denial is reversed by reconsideration)."""
        if self.state == self.State.DENIED:
            return []
        allowed = self.TRANSITIONS[self.State(self.state)]
        return [(state.value, state.label) for state in self.OUTCOMES if state in allowed]


def started_again(enrollments=None) -> models.Exists:
    """An application of the same kind was started after this one for the same profile, and
    not withdrawn (an expression on an Enrollment queryset; `enrollments`: a migration's
    model). A rejected application it follows is settled: the firm started over instead of
    resubmitting it, so it is no longer "to resubmit", and the newer one carries a
    revalidation's due date."""
    enrollments = enrollments or Enrollment
    return models.Exists(
        enrollments.objects.filter(profile=models.OuterRef("profile"), kind=models.OuterRef("kind"))
        .exclude(state=EnrollmentState.WITHDRAWN)
        .filter(
            models.Q(created_at__gt=models.OuterRef("created_at"))
            | models.Q(created_at=models.OuterRef("created_at"), pk__gt=models.OuterRef("pk"))
        )
    )


def superseded(enrollments=None) -> models.Q:
    """A rejected application started again (`started_again`): settled, with nothing to
    resubmit and no clock of its own."""
    return models.Q(state=EnrollmentState.REJECTED) & models.Q(started_again(enrollments))


def revalidation_clock_running(enrollments=None) -> models.Q:
    """The revalidations whose due date still runs (`Enrollment.revalidation_clock_runs`, as
    a query): a date set, not submitted yet, and not superseded."""
    return models.Q(
        state__in=Enrollment.REVALIDATION_CLOCK_STATES, deadline__isnull=False
    ) & ~superseded(enrollments)


class AccessGrantState(models.TextChoices):
    PREPARED = "prepared", "Prepared"
    AWAITING_PROVIDER = "awaiting_provider", "Awaiting the provider"
    PROVIDER_SAYS_DONE = "provider_says_done", "Provider says done"
    ACTIVE = "active", "Active"
    EXPIRED = "expired", "Expired"
    REJECTED = "rejected", "Rejected"
    CANCELLED = "cancelled", "Cancelled"


GRANT_OPEN = (
    AccessGrantState.PREPARED,
    AccessGrantState.AWAITING_PROVIDER,
    AccessGrantState.PROVIDER_SAYS_DONE,
)
# The provider's move (or they said they made it): reminders run, the deadline counts.
GRANT_PENDING = (AccessGrantState.AWAITING_PROVIDER, AccessGrantState.PROVIDER_SAYS_DONE)
# Open or active: the profile's one live attempt.
GRANT_LIVE = (*GRANT_OPEN, AccessGrantState.ACTIVE)


class AccessGrant(models.Model):
    """Giving the firm access to one profile's records in PECOS and NPPES."""

    class Method(models.TextChoices):
        CONNECTION_REQUEST = "connection_request", "Connection request from the firm"
        ADD_STAFF = "add_staff", "Provider adds the firm as staff"
        ADD_SURROGATE = "add_surrogate", "Provider adds the firm as surrogate"

    State = AccessGrantState
    OPEN_STATES = GRANT_OPEN
    PENDING_STATES = GRANT_PENDING
    LIVE_STATES = GRANT_LIVE
    # "Send again" is possible from these: a new attempt replaces the closed one.
    RETRYABLE_STATES = (State.EXPIRED, State.REJECTED)
    TRANSITIONS = {
        State.PREPARED: {State.AWAITING_PROVIDER, State.CANCELLED},
        State.AWAITING_PROVIDER: {
            State.PROVIDER_SAYS_DONE,
            State.ACTIVE,
            State.EXPIRED,
            State.REJECTED,
            State.CANCELLED,
        },
        State.PROVIDER_SAYS_DONE: {
            State.ACTIVE,
            State.AWAITING_PROVIDER,
            State.EXPIRED,
            State.REJECTED,
            State.CANCELLED,
        },
        State.ACTIVE: set(),
        State.EXPIRED: set(),
        State.REJECTED: set(),
        State.CANCELLED: set(),
    }

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    firm = models.ForeignKey(Firm, on_delete=models.CASCADE, related_name="access_grants")
    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="access_grants")
    method = models.CharField(
        max_length=24, choices=Method.choices, default=Method.CONNECTION_REQUEST
    )
    pecos = models.BooleanField("PECOS", default=True)
    nppes = models.BooleanField("NPPES", default=True)
    requested_role = models.CharField(
        "CMS role requested (add staff)",
        max_length=24,
        choices=CMSRole.choices,
        blank=True,
        help_text="Access Manager (usual) or Staff End User; for add-staff only.",
    )
    state = models.CharField(max_length=24, choices=State.choices, default=State.PREPARED)
    sent_at = models.DateTimeField(null=True, blank=True)
    deadline = models.DateTimeField(null=True, blank=True)
    previous = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="next_attempt"
    )
    created_at = models.DateTimeField(default=timezone.now)
    state_entered_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # One live attempt per profile: "send again" closes the old one first.
            models.UniqueConstraint(
                fields=["profile"],
                condition=models.Q(state__in=_values(GRANT_LIVE)),
                name="wf_grant_one_live_per_profile",
            ),
            models.CheckConstraint(
                condition=~models.Q(state="awaiting_provider", deadline__isnull=True)
                | ~models.Q(method="connection_request"),
                name="wf_grant_pending_request_has_deadline",
            ),
        ]
        indexes = [
            # The expiry scan: pending requests by deadline.
            models.Index(
                fields=["deadline"],
                condition=models.Q(state__in=_values(GRANT_PENDING)),
                name="wf_grant_due",
            ),
            models.Index(
                fields=["firm", "state_entered_at"],
                condition=models.Q(state__in=_values(GRANT_OPEN)),
                name="wf_grant_open",
            ),
        ]

    def __str__(self):
        return f"{self.get_method_display()} ({self.profile})"

    @property
    def is_open(self) -> bool:
        return self.state in self.OPEN_STATES

    @property
    def systems_label(self) -> str:
        return " and ".join(
            name for name, on in (("PECOS", self.pecos), ("NPPES", self.nppes)) if on
        )


class SignatureRoundState(models.TextChoices):
    AWAITING_SIGNATURE = "awaiting_signature", "Awaiting signature"
    PROVIDER_SAYS_SIGNED = "provider_says_signed", "Provider says signed"
    MAILED = "mailed", "Paper mailed"
    CONFIRMED = "confirmed", "Signature confirmed"
    RECEIVED = "received", "Paper received"
    CANCELLED = "cancelled", "Cancelled"


ROUND_OPEN = (
    SignatureRoundState.AWAITING_SIGNATURE,
    SignatureRoundState.PROVIDER_SAYS_SIGNED,
    SignatureRoundState.MAILED,
)


class SignatureRound(models.Model):
    """One signature the provider owes on an enrollment: round 1, then one per revision."""

    class Method(models.TextChoices):
        # CMS allows 20 days from submission for every one of them (DOMAIN.md, facts).
        ELECTRONIC = "electronic", "Electronic signature in PECOS (recommended)"
        UPLOAD = "upload", "Wet-signed certification statement, uploaded in PECOS"
        PAPER = "paper", "Wet-signed certification statement, mailed to the contractor (MAC)"

    State = SignatureRoundState
    OPEN_STATES = ROUND_OPEN
    TRANSITIONS = {
        State.AWAITING_SIGNATURE: {
            State.PROVIDER_SAYS_SIGNED,
            State.CONFIRMED,
            State.MAILED,
            State.CANCELLED,
        },
        State.PROVIDER_SAYS_SIGNED: {State.CONFIRMED, State.AWAITING_SIGNATURE, State.CANCELLED},
        # Back to awaiting: "I've mailed it" undone within minutes of a mis-tap.
        State.MAILED: {State.RECEIVED, State.AWAITING_SIGNATURE, State.CANCELLED},
        State.CONFIRMED: set(),
        State.RECEIVED: set(),
        State.CANCELLED: set(),
    }

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    firm = models.ForeignKey(Firm, on_delete=models.CASCADE, related_name="signature_rounds")
    enrollment = models.ForeignKey(Enrollment, on_delete=models.CASCADE, related_name="rounds")
    number = models.PositiveSmallIntegerField()
    is_revision = models.BooleanField(default=False)
    reason = models.CharField(
        max_length=300, help_text="Initial signature, or what changed in this revision."
    )
    method = models.CharField(max_length=16, choices=Method.choices, default=Method.ELECTRONIC)
    state = models.CharField(max_length=24, choices=State.choices, default=State.AWAITING_SIGNATURE)
    opened_at = models.DateTimeField(default=timezone.now)
    deadline = models.DateTimeField()
    mailed_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    state_entered_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["enrollment", "number"]
        constraints = [
            models.UniqueConstraint(
                fields=["enrollment"],
                condition=models.Q(state__in=_values(ROUND_OPEN)),
                name="wf_round_one_open_per_enrollment",
            ),
            models.UniqueConstraint(
                fields=["enrollment", "number"], name="wf_round_number_per_enrollment"
            ),
        ]
        indexes = [
            models.Index(
                fields=["deadline"],
                condition=models.Q(state__in=_values(ROUND_OPEN)),
                name="wf_round_due",
            ),
        ]

    def __str__(self):
        return f"Signature round {self.number}"

    @property
    def is_open(self) -> bool:
        return self.state in self.OPEN_STATES

    @property
    def is_paper(self) -> bool:
        """A wet signature (uploaded or mailed): slower, and flagged as a risk."""
        return self.method in (self.Method.UPLOAD, self.Method.PAPER)

    @property
    def is_mailed_method(self) -> bool:
        """Signed on paper and mailed to the contractor: closed when the MAC receives it."""
        return self.method == self.Method.PAPER


class DevelopmentRequestState(models.TextChoices):
    OPEN = "open", "Waiting for the response"
    PROVIDER_SAYS_DONE = "provider_says_done", "Provider says done"
    ANSWERED = "answered", "Answered (response sent to the contractor)"
    CANCELLED = "cancelled", "Cancelled"


DEVELOPMENT_OPEN = (DevelopmentRequestState.OPEN, DevelopmentRequestState.PROVIDER_SAYS_DONE)


class DevelopmentRequest(models.Model):
    """A contractor's letter asking for more information about a submitted application
    ("development"): what it asks, by when, and who must act. Several over an application's
    life are kept in order."""

    State = DevelopmentRequestState
    OPEN_STATES = DEVELOPMENT_OPEN
    TRANSITIONS = {
        State.OPEN: {State.PROVIDER_SAYS_DONE, State.ANSWERED, State.CANCELLED},
        State.PROVIDER_SAYS_DONE: {State.OPEN, State.ANSWERED, State.CANCELLED},
        State.ANSWERED: set(),
        State.CANCELLED: set(),
    }
    # Who must act on it: the firm answers from what it has, or the provider must give
    # something only they can (a document, a signature, an answer).
    HOLDERS = [(Holder.FIRM.value, "The firm"), (Holder.PROVIDER.value, "The provider")]

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    firm = models.ForeignKey(Firm, on_delete=models.CASCADE, related_name="development_requests")
    enrollment = models.ForeignKey(
        Enrollment, on_delete=models.CASCADE, related_name="development_requests"
    )
    number = models.PositiveSmallIntegerField()
    letter_on = models.DateField("letter dated")
    asked = models.TextField("what the contractor asks for", max_length=2000)
    due_on = models.DateField("response due")
    # The end of `due_on` in the firm's time zone: the clock the caseload and reports sort by.
    deadline = models.DateTimeField()
    holder = models.CharField(max_length=16, choices=HOLDERS, default=Holder.FIRM)
    state = models.CharField(max_length=24, choices=State.choices, default=State.OPEN)
    responded_on = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    state_entered_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["enrollment", "number"]
        constraints = [
            models.UniqueConstraint(
                fields=["enrollment", "number"], name="wf_development_number_per_enrollment"
            ),
        ]
        indexes = [
            models.Index(
                fields=["deadline"],
                condition=models.Q(state__in=_values(DEVELOPMENT_OPEN)),
                name="wf_development_due",
            ),
            models.Index(
                fields=["firm", "deadline"],
                condition=models.Q(state__in=_values(DEVELOPMENT_OPEN)),
                name="wf_development_open",
            ),
        ]

    def __str__(self):
        return f"Development request {self.number}"

    @property
    def is_open(self) -> bool:
        return self.state in self.OPEN_STATES

    @property
    def provider_must_act(self) -> bool:
        return self.holder == Holder.PROVIDER


class Signer(models.Model):
    """One person whose signature a round needs: the provider for an individual application,
    an Authorized or Delegated Official of the organization for an organizational one, and
    both for a reassignment. Each has their own "I've signed" and their own verification;
    the round is complete when every signer has signed."""

    class Role(models.TextChoices):
        PROVIDER = "provider", "Provider"
        AUTHORIZED = "authorized_official", "Authorized Official"
        DELEGATED = "delegated_official", "Delegated Official"

    class State(models.TextChoices):
        AWAITING = "awaiting", "Awaiting signature"
        SAYS_SIGNED = "says_signed", "Says signed"
        SIGNED = "signed", "Signed (verified)"

    TRANSITIONS = {
        State.AWAITING: {State.SAYS_SIGNED, State.SIGNED},
        State.SAYS_SIGNED: {State.AWAITING, State.SIGNED},
        State.SIGNED: set(),
    }

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    firm = models.ForeignKey(Firm, on_delete=models.CASCADE, related_name="signers")
    signature_round = models.ForeignKey(
        SignatureRound, on_delete=models.CASCADE, related_name="signers"
    )
    role = models.CharField(max_length=24, choices=Role.choices)
    name = models.CharField(max_length=200)
    # The address entered in PECOS for this signer: CMS emails its request to sign there.
    pecos_email = models.EmailField("email entered in PECOS")
    is_provider = models.BooleanField(default=False)
    official = models.ForeignKey(
        "clients.Official", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    state = models.CharField(max_length=16, choices=State.choices, default=State.AWAITING)
    state_entered_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["signature_round", "pk"]

    def __str__(self):
        return f"{self.name} ({self.get_role_display()})"

    @property
    def has_signed(self) -> bool:
        return self.state == self.State.SIGNED


def credential_storage():
    """Where credential files live: `STORAGES["credentials"]` (a private folder under var/,
    or an S3-compatible bucket; docs/deploy.md)."""
    from django.core.files.storage import storages

    return storages["credentials"]


class CredentialKind(models.Model):
    """One line of the firm's catalogue: what a credential is called, which details it has,
    and how it ends (an expiry date on the document, a fixed renewal period, or never)."""

    class Code(models.TextChoices):
        STATE_LICENSE = "state_license", "State license"
        DEA = "dea", "DEA registration"
        BOARD = "board", "Board certification"
        MALPRACTICE = "malpractice", "Malpractice certificate of insurance"
        CV = "cv", "CV"
        W9 = "w9", "W-9"
        CAQH = "caqh", "CAQH ProView attestation"
        CERTIFICATION_STATEMENT = "certification_statement", "Signed certification statement"
        OTHER = "other", "Other"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    firm = models.ForeignKey(Firm, on_delete=models.CASCADE, related_name="credential_kinds")
    code = models.CharField(max_length=32, choices=Code.choices, default=Code.OTHER)
    name = models.CharField(max_length=100)
    number_label = models.CharField(
        max_length=40, blank=True, help_text="What its number is called; blank: none."
    )
    has_state = models.BooleanField(default=False)
    issuer_label = models.CharField(
        max_length=40, blank=True, help_text="Who issues it (board, carrier); blank: none."
    )
    expires = models.BooleanField(default=False, help_text="The document carries an expiry date.")
    renews_every_days = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Due again this many days after it was last done."
    )
    needs_file = models.BooleanField(default=True)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint("firm", "name", name="wf_credential_kind_name_per_firm"),
        ]

    def __str__(self):
        return self.name

    @property
    def has_expiry(self) -> bool:
        return self.expires or self.renews_every_days is not None

    @property
    def in_sentence(self) -> str:
        """The name inside a sentence: "state license", but "DEA registration", "W-9"."""
        name = self.name
        return name[0].lower() + name[1:] if name[1:2].islower() else name


class CredentialState(models.TextChoices):
    REQUESTED = "requested", "Requested from the provider"
    RECEIVED = "received", "Received, awaiting review"
    ACCEPTED = "accepted", "Accepted"
    REJECTED = "rejected", "Rejected, asked again"
    CANCELLED = "cancelled", "No longer needed"


# Asked for, or on file: its clock runs (the request's due date, or its expiry).
CREDENTIAL_LIVE = (
    CredentialState.REQUESTED,
    CredentialState.RECEIVED,
    CredentialState.ACCEPTED,
    CredentialState.REJECTED,
)


class Credential(models.Model):
    """One credential of a client's profile (a Texas license, the current malpractice COI,
    the CAQH attestation): its details, its dates, its files (every version kept) and where
    it stands. Its clock is the request's due date while the provider owes it, and its
    expiry while it is on file."""

    State = CredentialState
    # The provider owes it: a to-do, reminders before the due date.
    OWED_STATES = (State.REQUESTED, State.REJECTED)
    LIVE_STATES = CREDENTIAL_LIVE
    TRANSITIONS = {
        State.REQUESTED: {State.RECEIVED, State.ACCEPTED, State.CANCELLED},
        State.RECEIVED: {State.ACCEPTED, State.REJECTED, State.CANCELLED},
        State.REJECTED: {State.RECEIVED, State.ACCEPTED, State.CANCELLED},
        # A renewal: asked for again, or the provider sends it from their renewal to-do.
        State.ACCEPTED: {State.REQUESTED, State.RECEIVED, State.CANCELLED},
        State.CANCELLED: set(),
    }

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    firm = models.ForeignKey(Firm, on_delete=models.CASCADE, related_name="credentials")
    # PROTECT: a client's files are never deleted with it (workflows/credentials.py).
    profile = models.ForeignKey(Profile, on_delete=models.PROTECT, related_name="credentials")
    kind = models.ForeignKey(CredentialKind, on_delete=models.PROTECT, related_name="+")
    number = models.CharField(max_length=60, blank=True)
    state_code = models.CharField("state", max_length=2, blank=True)
    issuer = models.CharField(max_length=200, blank=True)
    issued_on = models.DateField(null=True, blank=True)
    expires_on = models.DateField(null=True, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.REQUESTED)
    # What staff asked for, by when, and why the last upload was refused.
    request_note = models.CharField(max_length=300, blank=True)
    due_on = models.DateField(null=True, blank=True)
    rejection_reason = models.CharField(max_length=300, blank=True)
    # The clock now (workflows.credentials.clock_of): the caseload, the stuck report and the
    # calendar read it.
    deadline = models.DateTimeField(null=True, blank=True)
    # For a wet-signed certification statement: the round it belongs to.
    signature_round = models.ForeignKey(
        SignatureRound, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    state_entered_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["kind__name", "state_code", "pk"]
        indexes = [
            models.Index(
                fields=["deadline"],
                condition=models.Q(state__in=_values(CREDENTIAL_LIVE), deadline__isnull=False),
                name="wf_credential_due",
            ),
            models.Index(
                fields=["firm", "deadline"],
                condition=models.Q(state__in=_values(CREDENTIAL_LIVE), deadline__isnull=False),
                name="wf_credential_open",
            ),
        ]

    def __str__(self):
        details = " ".join(part for part in (self.state_code, self.number) if part)
        return f"{self.kind.name} {details}".strip()

    @property
    def is_owed(self) -> bool:
        return self.state in self.OWED_STATES

    @property
    def what(self) -> str:
        """The credential inside a sentence: "state license (TX)", "malpractice certificate
        of insurance"."""
        where = f" ({self.state_code})" if self.state_code else ""
        return f"{self.kind.in_sentence}{where}"


class CredentialFile(models.Model):
    """One version of a credential's document. Never overwritten, never deleted with its
    client: the stored name is generated, never the uploader's."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    firm = models.ForeignKey(Firm, on_delete=models.CASCADE, related_name="+")
    credential = models.ForeignKey(Credential, on_delete=models.PROTECT, related_name="files")
    version = models.PositiveSmallIntegerField()
    file = models.FileField(storage=credential_storage, max_length=200)
    content_type = models.CharField(max_length=40)
    size = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    uploaded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["credential", "-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["credential", "version"], name="wf_credential_file_version"
            ),
        ]

    def __str__(self):
        return f"Version {self.version}"


class CalendarFeed(models.Model):
    """A person's secret calendar address in one firm: their deadlines as an iCalendar
    feed. Rotating it replaces the token; the old address stops working at once."""

    firm = models.ForeignKey(Firm, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    token = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["firm", "user"], name="wf_calendar_feed_per_member"),
        ]

    def __str__(self):
        return f"Calendar feed of {self.user}"


class OpenStep(models.Model):
    """One open step of a client's workflows that a stuck rule can list, as the transitions
    left it: the stuck report (`reports/reports.py`) reads this table instead of the
    workflows' own. Every transition rewrites its client's rows
    (`workflows.open_steps.refresh_read_models`). What is decided by state alone is decided
    here (a request already sent again has no row; a slow application with a development
    request open has none); what depends on time (the firm's thresholds, "near its
    deadline", an expiry within the month) is compared when the report reads it, so time
    passing rewrites nothing."""

    class Kind(models.TextChoices):
        GRANT = "grant"
        ROUND = "round"
        DEVELOPMENT = "development"
        ENROLLMENT = "enrollment"
        CREDENTIAL = "credential"
        CLIENT = "client"

    class Rule(models.TextChoices):
        """The stuck rule that may list the step (`reports/stuck.py` says when)."""

        ACCESS_PENDING = "access_pending"
        ACCESS_EXPIRED = "access_expired"
        VERIFY = "verify"
        VERIFY_ROUND = "verify_round"
        SIGNATURE = "signature"
        DEVELOPMENT = "development"
        REJECTED = "rejected"
        RECONSIDERATION = "reconsideration"
        REVALIDATION = "revalidation"
        CREDENTIAL = "credential"
        DOCUMENT = "document"
        DOCUMENT_REVIEW = "document_review"
        PREPARING = "preparing"
        SUBMITTED = "submitted"
        IN_DEVELOPMENT = "in_development"
        # One row per client with an open request or application: listed when the client
        # is quiet and nothing else of theirs is.
        IDLE_CLIENT = "idle_client"

    firm = models.ForeignKey(Firm, on_delete=models.CASCADE, related_name="+", db_index=False)
    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="+")
    profile = models.ForeignKey(Profile, null=True, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    object_id = models.BigIntegerField()
    object_public_id = models.UUIDField()
    rule = models.CharField(max_length=24, choices=Rule.choices)
    stage = models.CharField(max_length=24)
    holder = models.CharField(max_length=16, choices=Holder.choices)
    # Since when the step is in the state the rule is about (a round: since it was
    # opened); none for a client's open-work row (its last activity is the client's own).
    # Not "entered_at": that is the report's name for what it shows.
    since = models.DateTimeField(null=True)
    # The object's own clock: a request's 30 days, a round's 20, a response or due date, a
    # reconsideration window; an application's revalidation due date.
    deadline = models.DateTimeField(null=True)
    expires_on = models.DateField(null=True)  # a credential's expiry
    # The client's assigned staff member, as the report counts and filters by it (joining
    # 30,000 clients for it was half the report's SQL): written with the rows, and again
    # when the client is reassigned (`open_steps.reassigned`).
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )

    class Meta:
        indexes = [
            # Each rule's items are one range scan: by how long they have waited, or by
            # their clock.
            models.Index(fields=["firm", "rule", "since"], name="wf_openstep_since"),
            models.Index(fields=["firm", "rule", "deadline"], name="wf_openstep_deadline"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "object_id", "rule"], name="wf_openstep_one_per_rule"
            ),
        ]

    def __str__(self):
        return f"{self.rule} {self.kind} {self.object_id}"
