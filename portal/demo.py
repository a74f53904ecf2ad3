"""Fixed demo accounts for `make run`. Demo only: these credentials are public."""

from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import TOTP

from .models import Firm, Membership, Role, User
from .services import _mark_email_verified

# bandit: published in the README; demo data only
DEMO_PASSWORD = "demo-pass-2026!"  # noqa: S105  # nosec B105
# bandit: published too
DEMO_TOTP_SECRET = "JBSWY3DPEHPK3PXP"  # noqa: S105  # nosec B105

# (name, slug, time zone, name as registered in I&A, organizational NPI)
DEMO_FIRMS = [
    (
        "Northwind Credentialing",
        "northwind",
        "America/Chicago",
        "Northwind Credentialing Services LLC",
        "1588667638",
    ),
    ("Bluebird Credentialing", "bluebird", "America/Los_Angeles", "", ""),
]
DEMO_MEMBERS = [
    ("admin@northwind.example", "Nadia Admin", "northwind", Role.ADMIN),
    ("staff@northwind.example", "Sam Staff", "northwind", Role.STAFF),
    ("admin@bluebird.example", "Bea Admin", "bluebird", Role.ADMIN),
    ("staff@bluebird.example", "Ben Staff", "bluebird", Role.STAFF),
]
DEMO_OPERATOR = "operator@credportal.example"


def ensure_user(email: str, full_name: str, *, totp: bool, **extra) -> User:
    """Create the demo user once; later runs leave it as it is."""
    user = User.objects.filter(email=email).first()
    if user is None:
        user = User.objects.create_user(
            email=email, password=DEMO_PASSWORD, full_name=full_name, **extra
        )
        _mark_email_verified(user)
    if totp and not Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists():
        TOTP.activate(user, DEMO_TOTP_SECRET)
    return user


def seed_firms() -> dict[str, Firm]:
    firms = {}
    for name, slug, zone, ia_name, npi in DEMO_FIRMS:
        firms[slug], _ = Firm.objects.get_or_create(
            slug=slug,
            defaults={
                "name": name,
                "time_zone": zone,
                "contact_email": f"help@{slug}.example",
                "ia_name": ia_name,
                "npi": npi,
            },
        )
    for email, full_name, slug, role in DEMO_MEMBERS:
        user = ensure_user(email, full_name, totp=True)
        Membership.objects.get_or_create(user=user, firm=firms[slug], defaults={"role": role})
    ensure_user(DEMO_OPERATOR, "Olive Operator", totp=True, is_staff=True, is_superuser=True)
    return firms
