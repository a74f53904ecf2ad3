"""Provider clients: the person, their companies, the CMS profiles access is granted on, and
the people at their office who may act for them."""

import uuid
from datetime import UTC, datetime

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from portal.models import Firm, validate_portal_email
from portal.npi import validate_npi

# "No open deadline": sorts after every real one, so the caseload's order needs no NULLs.
NO_DEADLINE = datetime(9999, 12, 31, tzinfo=UTC)


class IAController(models.TextChoices):
    """Who controls a person's login to CMS's Identity & Access system (one per person: a
    provider's PLLC is reached through the same login). Regaining it is a to-do of its own:
    someone else has it, the provider says they got it back, staff confirm."""

    PROVIDER = "provider", "The provider"
    SOMEONE_ELSE = "someone_else", "Someone else (former biller, group admin…): to regain"
    REGAIN_CLAIMED = "regain_claimed", "The provider says they regained it: to check"
    UNKNOWN = "unknown", "Unknown"


class Client(models.Model):
    """A provider (clinician) the firm works for."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    firm = models.ForeignKey(Firm, on_delete=models.CASCADE, related_name="clients")
    first_name = models.CharField(max_length=100)
    last_name = models.CharField(max_length=100)
    credentials = models.CharField(
        max_length=50, blank=True, help_text="For example MD, DO, LCSW, PsyD."
    )
    npi = models.CharField("individual NPI", max_length=10, validators=[validate_npi])
    email = models.EmailField(validators=[validate_portal_email])
    phone = models.CharField(max_length=30, blank=True)
    assigned_staff = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assigned_clients",
    )
    notes = models.TextField(blank=True)
    # The provider's own portal account, once they accepted the firm's invitation.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="client_records",
    )
    # The provider's own I&A login (issue 10, section 6: the person's, not each profile's).
    ia_controller = models.CharField(
        "who controls the I&A login",
        max_length=16,
        choices=IAController.choices,
        default=IAController.PROVIDER,
    )
    ia_controller_note = models.CharField("who, if known", max_length=200, blank=True)
    password_reset_likely = models.BooleanField(
        "I&A password reset likely",
        default=False,
        help_text="No I&A login for a long time: the password has probably expired.",
    )
    created_at = models.DateTimeField(default=timezone.now)
    last_activity_at = models.DateTimeField(default=timezone.now)
    # The soonest deadline of the client's open access requests and signature rounds, kept
    # by the workflow transitions (workflows.open_steps.soonest_open_deadline), so the
    # caseload's "most urgent first" is an index seek, not a sort of every client.
    next_deadline = models.DateTimeField(default=NO_DEADLINE, editable=False)

    class Meta:
        ordering = ["last_name", "first_name"]
        constraints = [
            models.UniqueConstraint(fields=["firm", "npi"], name="clients_client_npi_per_firm"),
        ]
        indexes = [
            models.Index(
                fields=["firm", "assigned_staff", "next_deadline", "id"],
                name="clients_client_caseload",
            ),
            models.Index(fields=["firm", "next_deadline", "id"], name="clients_client_urgency"),
            models.Index("firm", Lower("last_name"), name="clients_client_name"),
            models.Index(fields=["firm", "last_activity_at"], name="clients_client_activity"),
        ]

    def __str__(self):
        return self.display_name

    @property
    def display_name(self) -> str:
        name = f"{self.first_name} {self.last_name}".strip()
        return f"{name}, {self.credentials}" if self.credentials else name


class Organization(models.Model):
    """The provider's company (LLC, PLLC, group practice): a CMS profile of its own."""

    class Kind(models.TextChoices):
        LLC = "llc", "LLC"
        PLLC = "pllc", "PLLC"
        GROUP = "group", "Group practice"
        CORPORATION = "corporation", "Corporation"
        OTHER = "other", "Other"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    firm = models.ForeignKey(Firm, on_delete=models.CASCADE, related_name="organizations")
    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="organizations")
    legal_name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.PLLC)
    npi = models.CharField(
        "organizational NPI", max_length=10, blank=True, validators=[validate_npi]
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["legal_name"]
        constraints = [
            models.UniqueConstraint(
                fields=["client", "legal_name"], name="clients_organization_name_per_client"
            ),
        ]

    def __str__(self):
        return self.legal_name


class Profile(models.Model):
    """What CMS manages separately and access is granted on: the client's individual profile,
    or one organization's. A client with a PLLC has two, and needs two access grants."""

    class Kind(models.TextChoices):
        INDIVIDUAL = "individual", "Individual"
        ORGANIZATIONAL = "organizational", "Organizational"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    firm = models.ForeignKey(Firm, on_delete=models.CASCADE, related_name="profiles")
    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="profiles")
    organization = models.OneToOneField(
        Organization, null=True, blank=True, on_delete=models.CASCADE, related_name="profile"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["kind", "created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["client"],
                condition=models.Q(kind="individual"),
                name="clients_profile_one_individual",
            ),
            models.CheckConstraint(
                condition=(
                    models.Q(kind="individual", organization__isnull=True)
                    | models.Q(kind="organizational", organization__isnull=False)
                ),
                name="clients_profile_kind_matches_organization",
            ),
        ]

    def __str__(self):
        return self.label

    @property
    def label(self) -> str:
        """How the portal names the profile: "Individual" or the company's legal name."""
        if self.kind == self.Kind.INDIVIDUAL:
            return "Individual profile"
        return self.organization.legal_name

    @property
    def in_sentence(self) -> str:
        """The profile inside a sentence: "your individual profile", "your Rivera Therapy
        PLLC" (a legal name keeps its capitals)."""
        if self.kind == self.Kind.INDIVIDUAL:
            return "individual profile"
        return self.organization.legal_name

    @property
    def is_individual(self) -> bool:
        return self.kind == self.Kind.INDIVIDUAL


class CMSRole(models.TextChoices):
    """A person's role on a CMS record; it decides what they may do, not their title."""

    AUTHORIZED_OFFICIAL = "authorized_official", "Authorized Official"
    ACCESS_MANAGER = "access_manager", "Access Manager"
    STAFF_END_USER = "staff_end_user", "Staff End User"


class Delegate(models.Model):
    """Someone at the provider's office the provider lets act on their to-dos."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    firm = models.ForeignKey(Firm, on_delete=models.CASCADE, related_name="delegates")
    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="delegates")
    name = models.CharField(max_length=200)
    email = models.EmailField(validators=[validate_portal_email])
    title = models.CharField(max_length=100, blank=True, help_text="For example Office manager.")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="delegations",
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                "client", Lower("email"), name="clients_delegate_email_per_client"
            ),
        ]

    def __str__(self):
        return self.name


class DelegateRole(models.Model):
    """A delegate's CMS role on one of the client's profiles."""

    delegate = models.ForeignKey(Delegate, on_delete=models.CASCADE, related_name="roles")
    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="delegate_roles")
    cms_role = models.CharField(max_length=24, choices=CMSRole.choices)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["delegate", "profile"], name="clients_delegate_role_per_profile"
            ),
        ]

    def __str__(self):
        return f"{self.delegate} – {self.get_cms_role_display()} on {self.profile}"


class Official(models.Model):
    """An organization's Authorized or Delegated Official: who signs its enrollment
    applications (an 855B, and the organization's side of a reassignment). The provider is
    not assumed to be one: for a solo PLLC they usually are, for a group often not.

    The person is the provider, one of their delegates, or someone known only by name and
    email. `email` is the address entered in PECOS for them: CMS sends its request to sign
    there, so a stale one silently blocks the signature."""

    class Role(models.TextChoices):
        AUTHORIZED = "authorized_official", "Authorized Official"
        DELEGATED = "delegated_official", "Delegated Official"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    firm = models.ForeignKey(Firm, on_delete=models.CASCADE, related_name="officials")
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="officials"
    )
    role = models.CharField(max_length=24, choices=Role.choices)
    name = models.CharField(max_length=200)
    email = models.EmailField("email entered in PECOS", validators=[validate_portal_email])
    is_provider = models.BooleanField(default=False)
    delegate = models.ForeignKey(
        Delegate, null=True, blank=True, on_delete=models.SET_NULL, related_name="official_roles"
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["role", "name"]
        constraints = [
            models.UniqueConstraint(
                "organization",
                Lower("email"),
                condition=models.Q(is_active=True),
                name="clients_official_email_per_organization",
            ),
            models.CheckConstraint(
                condition=~models.Q(is_provider=True, delegate__isnull=False),
                name="clients_official_one_kind_of_person",
            ),
        ]

    def __str__(self):
        return f"{self.name}, {self.get_role_display()}"
