"""The tenancy core: people, firms, who belongs where, invitations, and the audit trail."""

import unicodedata
import uuid
import zoneinfo

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.deconstruct import deconstructible

from .npi import validate_npi


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"“{value}” is not a known time zone (e.g. America/Chicago).")


MAX_DAY = 365


def validate_day_list(value) -> None:
    """A cadence: a JSON list of whole days (0 to 365) after the step started."""
    if not isinstance(value, list) or not all(
        isinstance(day, int) and not isinstance(day, bool) for day in value
    ):
        raise ValidationError("Write days as whole numbers, e.g. 3, 7, 14.")
    if any(day < 0 or day > MAX_DAY for day in value):
        raise ValidationError(f"Days must be between 0 and {MAX_DAY}.")


def parse_day_list(value: list[int]) -> list[int]:
    """The days of a cadence in order, each once."""
    return sorted(set(value))


@deconstructible
class DayList:
    """A cadence field's default: a fresh list per instance (never one shared list)."""

    def __init__(self, *days: int):
        self.days = days

    def __call__(self) -> list[int]:
        return list(self.days)

    def __eq__(self, other) -> bool:
        return isinstance(other, DayList) and self.days == other.days


def validate_portal_email(value: str) -> None:
    """What Django's email check lets through and the portal refuses: invisible characters
    (a zero-width space or joiner makes an address look like another one) and IP-literal
    domains (ana@[10.0.0.1] is no provider's address, and would aim the firm's mail server
    at a bare host)."""
    if any(unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp", "Zs") for char in value):
        raise ValidationError(
            "This address contains invisible or space characters; type it again.",
            code="invisible_characters",
        )
    if "@[" in value:
        raise ValidationError(
            "Use an address with a domain name, not an IP address.", code="ip_literal"
        )


def normalize_email(email: str) -> str:
    """Email addresses are compared case-insensitively everywhere, so store them lowercase."""
    return (email or "").strip().lower()


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create_user(self, email, password, **extra_fields):
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=normalize_email(email), **extra_fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email, password=None, **extra_fields):
        extra_fields.setdefault("is_staff", False)
        extra_fields.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra_fields)

    def create_superuser(self, email, password=None, **extra_fields):
        extra_fields.setdefault("is_staff", True)
        extra_fields.setdefault("is_superuser", True)
        return self._create_user(email, password, **extra_fields)


class User(AbstractBaseUser, PermissionsMixin):
    """A person who logs in. Keyed by email; firm roles live on Membership.

    `is_staff` here means the Django admin (platform operators), not a firm's staff.
    """

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    email = models.EmailField("email address", unique=True, validators=[validate_portal_email])
    full_name = models.CharField(max_length=200, blank=True)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField("platform operator", default=False)
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        constraints = [
            models.UniqueConstraint(Lower("email"), name="portal_user_email_ci_unique"),
        ]

    def __str__(self):
        return self.full_name or self.email

    def clean(self):
        super().clean()
        self.email = normalize_email(self.email)

    @property
    def display_name(self) -> str:
        return self.full_name or self.email


# Every numeric firm setting, with its bounds; enforced by the form (validators) and the
# database (check constraints). Why these: an invitation link is a credential, a month is
# long enough; CMS rejects a connection request after 30 days and an unsigned application
# after 20, so a firm may shorten those clocks, never lengthen them; hours are of a day.
SETTING_BOUNDS = {
    "invitation_days": (1, 30),
    "grant_expiry_days": (1, 30),
    "signature_deadline_days": (1, 20),
    # Defaults only: each letter states its own date, and staff may give it instead.
    "development_response_days": (1, 90),
    "reconsideration_days": (1, 120),
    # Long enough to survive a weekend mail server outage, never so long a week-old
    # reminder goes out.
    "notification_max_age_hours": (24, 168),
    "reminder_hour": (0, 23),
    "digest_hour": (0, 23),
    # A phone photo is 2-6 MB and a scanned certificate of insurance rarely 10; more than
    # 50 MB is a video or a mistake.
    "upload_max_mb": (1, 50),
}


def _bounded(name: str) -> list:
    low, high = SETTING_BOUNDS[name]
    return [MinValueValidator(low), MaxValueValidator(high)]


class Firm(models.Model):
    """A credentialing company: the tenant. Nothing of one firm is ever shown to another."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80, unique=True)
    time_zone = models.CharField(
        max_length=64, default="America/New_York", validators=[validate_time_zone]
    )
    invitation_days = models.PositiveSmallIntegerField(
        validators=_bounded("invitation_days"),
        default=7,
        help_text="How long an invitation link stays valid.",
    )
    grant_expiry_days = models.PositiveSmallIntegerField(
        "connection request lifetime (days)",
        validators=_bounded("grant_expiry_days"),
        default=30,
        help_text="CMS rejects a connection request not approved within 30 days.",
    )
    signature_deadline_days = models.PositiveSmallIntegerField(
        "signature deadline (days)",
        validators=_bounded("signature_deadline_days"),
        default=20,
        help_text="Contractors reject applications left unsigned (20 days at Noridian).",
    )
    # How providers find the firm in CMS's Identity & Access system (adding it as surrogate):
    # by the name it is registered under there, or its organizational NPI.
    ia_name = models.CharField(
        "name as registered in I&A",
        max_length=200,
        blank=True,
        help_text="The exact name providers search for when adding you as surrogate "
        "(if not the firm's name above).",
    )
    npi = models.CharField(
        "organizational NPI (optional)",
        max_length=10,
        blank=True,
        validators=[validate_npi],
        help_text="Providers can also find you by it in I&A.",
    )
    development_response_days = models.PositiveSmallIntegerField(
        "development response due (days after the letter)",
        validators=_bounded("development_response_days"),
        default=30,
        help_text="Contractors reject an application whose development request is not "
        "answered within 30 days of the letter (letters state their own date).",
    )
    reconsideration_days = models.PositiveSmallIntegerField(
        "reconsideration window (days after a denial)",
        validators=_bounded("reconsideration_days"),
        default=60,
        help_text="How long after a denial letter reconsideration may be requested "
        "(usually 60 days; the letter states its own deadline).",
    )
    notification_max_age_hours = models.PositiveSmallIntegerField(
        "keep undelivered emails for (hours)",
        validators=_bounded("notification_max_age_hours"),
        default=72,
        help_text="While the mail server is down, emails wait and go out when it answers; "
        "one older than this is given up and you are told (72 hours covers a weekend).",
    )
    contact_email = models.EmailField(
        validators=[validate_portal_email],
        blank=True,
        help_text="Where providers write with questions; shown in emails.",
    )
    # Notification cadences: days after the step started.
    grant_reminder_days = models.JSONField(
        default=DayList(3, 7, 14, 21, 25, 28),
        validators=[validate_day_list],
        help_text="Reminders to the provider while a connection request is pending.",
    )
    grant_staff_alert_days = models.JSONField(
        default=DayList(21, 28),
        validators=[validate_day_list],
        help_text="Alerts to the assigned staff member while a request is pending.",
    )
    round_reminder_days = models.JSONField(
        default=DayList(2, 5, 10, 15),
        validators=[validate_day_list],
        help_text="Reminders to the provider while a signature is awaited.",
    )
    round_staff_alert_days = models.JSONField(
        default=DayList(7, 15),
        validators=[validate_day_list],
        help_text="Alerts to staff while a signature is awaited (and at its deadline).",
    )
    credential_reminder_days = models.JSONField(
        "expiry reminders (days before)",
        default=DayList(90, 60, 30, 14, 7),
        validators=[validate_day_list],
        help_text="Reminders to the provider and alerts to staff before a credential expires "
        "or a revalidation is due.",
    )
    document_reminder_days = models.JSONField(
        "document request reminders (days before due)",
        default=DayList(7, 3, 1),
        validators=[validate_day_list],
        help_text="Reminders to the provider before a requested document is due.",
    )
    upload_max_mb = models.PositiveSmallIntegerField(
        "largest upload (MB)",
        validators=_bounded("upload_max_mb"),
        default=20,
        help_text="The largest file a provider or staff member may upload.",
    )
    reminder_hour = models.PositiveSmallIntegerField(
        validators=_bounded("reminder_hour"),
        default=9,
        help_text="Local hour (0-23) reminders go out, in the firm's time zone.",
    )
    stuck_thresholds = models.JSONField(
        default=dict,
        blank=True,
        help_text="Overrides of the stuck rules (days); see workflows/stuck.py for the names.",
    )
    digest_hour = models.PositiveSmallIntegerField(
        validators=_bounded("digest_hour"),
        default=8,
        help_text="Local hour (0-23) of the staff daily digest.",
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(**{f"{name}__gte": low, f"{name}__lte": high}),
                name=f"portal_firm_{name}_in_range",
            )
            for name, (low, high) in SETTING_BOUNDS.items()
        ]

    def __str__(self):
        return self.name

    @property
    def name_in_ia(self) -> str:
        return self.ia_name or self.name

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)


class Role(models.TextChoices):
    ADMIN = "admin", "Firm admin"
    STAFF = "staff", "Staff"
    CLIENT = "client", "Provider or delegate"


# Roles that work the firm's data and must log in with a second factor.
FIRM_ROLES = frozenset({Role.ADMIN, Role.STAFF})


class MembershipQuerySet(models.QuerySet):
    def firm_staff(self, firm):
        """The firm's active admins and staff: the people who work its caseload."""
        return self.filter(firm=firm, is_active=True, role__in=FIRM_ROLES)


class Membership(models.Model):
    """A user's place in one firm. One per user and firm; deactivated rather than deleted."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    firm = models.ForeignKey(Firm, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    deactivated_at = models.DateTimeField(null=True, blank=True)

    objects = MembershipQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "firm"], name="portal_membership_one_per_firm"),
        ]
        indexes = [models.Index(fields=["firm", "role", "is_active"])]

    def __str__(self):
        return f"{self.user} at {self.firm} ({self.get_role_display()})"

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN

    @property
    def works_for_firm(self) -> bool:
        """Admin or staff: sees the firm's caseload, as opposed to a provider or delegate."""
        return self.role in FIRM_ROLES


class InvitationQuerySet(models.QuerySet):
    def open(self):
        """Neither accepted nor revoked; may still be expired."""
        return self.filter(accepted_at__isnull=True, revoked_at__isnull=True)


class Invitation(models.Model):
    """An emailed link that creates an account (or adds a firm to one). No open sign-up.

    The link carries a signed token naming this invitation and its current `nonce`; resending
    rotates the nonce, so only the newest link works, and acceptance is recorded once.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        ACCEPTED = "accepted", "Accepted"
        REVOKED = "revoked", "Revoked"
        EXPIRED = "expired", "Expired"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    firm = models.ForeignKey(Firm, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField(validators=[validate_portal_email])
    role = models.CharField(max_length=16, choices=Role.choices)
    invited_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    nonce = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)
    issued_at = models.DateTimeField(
        default=timezone.now,
        help_text="When the current link was made (resending makes a new one).",
    )
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)
    # For providers and delegates: the public id of the client or delegate record the
    # accepted account is linked to (the clients app does the linking).
    subject_uuid = models.UUIDField(null=True, blank=True)

    objects = InvitationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                "firm",
                Lower("email"),
                condition=models.Q(accepted_at__isnull=True, revoked_at__isnull=True),
                name="portal_invitation_one_open_per_email",
            ),
        ]

    def __str__(self):
        return f"Invitation to {self.firm} ({self.get_role_display()})"

    @property
    def status(self) -> str:
        if self.accepted_at:
            return self.Status.ACCEPTED
        if self.revoked_at:
            return self.Status.REVOKED
        if self.expires_at <= timezone.now():
            return self.Status.EXPIRED
        return self.Status.PENDING

    def get_status_display(self) -> str:
        return self.Status(self.status).label


class AuditEventQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise TypeError("Audit events are append-only.")

    def delete(self):
        raise TypeError("Audit events are append-only.")


class AuditEvent(models.Model):
    """Append-only record of who did what, to what, when and from where.

    `actor` is null for the system (scheduled jobs) and for failed logins by unknown users.
    `client_uuid` ties an event to one provider client's timeline (filled by the workflows).
    Personal data is limited to what the trail needs; log files never carry it.
    """

    # Indexed by the composite indexes below, which start with the firm.
    firm = models.ForeignKey(
        Firm,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="audit_events",
        db_index=False,
    )
    actor = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_events"
    )
    verb = models.CharField(max_length=64)
    target_type = models.CharField(max_length=64, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_label = models.CharField(max_length=255, blank=True)
    client_uuid = models.UUIDField(null=True, blank=True)
    data = models.JSONField(default=dict, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["firm", "-created_at"], name="portal_audit_firm_recent"),
            # Stage durations and the trend walk each object's transitions in order.
            models.Index(
                fields=["firm", "target_type", "target_id", "created_at", "id"],
                name="portal_audit_object_history",
            ),
            models.Index(
                fields=["client_uuid", "-created_at"],
                condition=models.Q(client_uuid__isnull=False),
                name="portal_audit_client_timeline",
            ),
        ]

    def __str__(self):
        return f"{self.verb} {self.target_type} {self.target_id}".strip()

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise TypeError("Audit events are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError("Audit events are append-only.")

    @property
    def actor_label(self) -> str:
        if self.actor_id is None:
            return "System" if self.verb != "auth.login_failed" else "Unknown"
        return self.actor.display_name
