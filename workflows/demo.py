"""The demo's providers and their workflows, built through the real services with the clock
set back, so every state and every timeline event is one the portal itself would record.
Demo only: these accounts are public."""

import calendar
import csv
import io
import random
from datetime import date, timedelta
from pathlib import Path

import time_machine
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db.models import F
from django.utils import timezone

from clients import services as client_services
from clients.importing import organization_kind
from clients.models import Client, CMSRole, Official, Organization, Profile
from notifications.models import Notification
from portal.demo import ensure_user
from portal.models import Firm, Membership, Role, User
from portal.npi import npi_with_check_digit

from . import credentials, revalidation, services
from .calendar import calendar_feed_rotate, feed_address
from .models import AccessGrant, Enrollment, Holder, SignatureRound
from .rules import Party

FIRST = [
    "Maya",
    "Jonah",
    "Priya",
    "Luis",
    "Grace",
    "Omar",
    "Hana",
    "Eli",
    "Nora",
    "Sam",
    "Ivy",
    "Theo",
    "Lena",
    "Ravi",
    "Ada",
    "Ben",
    "Cora",
    "Dev",
    "Esme",
    "Finn",
]
LAST = [
    "Alvarez",
    "Brooks",
    "Castillo",
    "Dunn",
    "Ellis",
    "Foster",
    "Garcia",
    "Hughes",
    "Iqbal",
    "Jensen",
    "Kim",
    "Lopez",
    "Moreau",
    "Nakamura",
    "Owens",
    "Patel",
    "Quinn",
    "Reyes",
    "Schmidt",
    "Tran",
    "Usman",
    "Vega",
    "Walsh",
    "Xu",
    "Young",
    "Zimmer",
]
ORGANIZATION_SUFFIXES = ["Health PLLC", "Therapy LLC", "Medical Group"]
CREDENTIALS = ["MD", "DO", "LCSW", "PsyD", "LPC", "NP", "PT", "LMFT"]


class DemoClock:
    """Sets the clock `days` before the moment the seed started, step by step."""

    def __init__(self):
        self.start = timezone.now().replace(microsecond=0)

    def at(self, days_ago: float):
        return time_machine.travel(self.start - timedelta(days=days_ago), tick=False)


def _npi(rng: random.Random) -> str:
    return npi_with_check_digit(str(rng.randint(100_000_000, 199_999_999)))


def _client(firm, staff, *, first, last, credentials, email, npi, actor) -> Client:
    return client_services.client_create(
        firm=firm,
        actor=actor,
        assigned_staff=staff,
        first_name=first,
        last_name=last,
        credentials=credentials,
        npi=npi,
        email=email,
        phone="555-0100",
    )


def _provider_account(client: Client, firm: Firm) -> None:
    user = ensure_user(client.email, f"{client.first_name} {client.last_name}", totp=False)
    Membership.objects.get_or_create(user=user, firm=firm, defaults={"role": Role.CLIENT})
    Client.objects.filter(pk=client.pk).update(user=user)


def _individual(client: Client) -> Profile:
    return client.profiles.get(kind=Profile.Kind.INDIVIDUAL)


def seed_rivera(firm, staff, clock: DemoClock) -> None:
    """Two profiles: individual access active; the PLLC's request sent 27 days ago, pending;
    an enrollment in round 2 after a revision, with a development request the provider must
    answer in 6 days; an office manager with Access Manager."""
    with clock.at(60):
        rivera = _client(
            firm,
            staff,
            first="Ana",
            last="Rivera",
            credentials="LCSW",
            email="rivera@clinic.example",
            npi="1234567893",
            actor=staff,
        )
        pllc = client_services.organization_add(
            client=rivera,
            legal_name="Rivera Therapy PLLC",
            kind=Organization.Kind.PLLC,
            npi=npi_with_check_digit("124567890"),
            actor=staff,
            provider_is_authorized_official=True,
        )
        individual = _individual(rivera)
        grant = services.grant_create(
            profile=individual, method=AccessGrant.Method.CONNECTION_REQUEST, actor=staff
        )
        enrollment = services.enrollment_create(
            profile=individual, kind=Enrollment.Kind.INITIAL, actor=staff
        )
    _provider_account(rivera, firm)
    party = Party(name=rivera.display_name, is_provider=True)
    provider = User.objects.get(email=rivera.email)
    with clock.at(58):
        services.grant_claim_done(grant=grant, party=party, actor=provider)
    with clock.at(57):
        services.grant_mark_active(grant=grant, actor=staff)
    with clock.at(50):
        first = services.round_open(enrollment=enrollment, actor=staff)
    with clock.at(47):
        services.round_claim_signed(signature_round=first, party=party, actor=provider)
    with clock.at(46):
        services.round_confirm(signature_round=first, actor=staff)
    with clock.at(30):
        address = services.development_open(
            enrollment=enrollment,
            actor=staff,
            asked="The practice location's address as it appears on the lease",
            holder=Holder.FIRM,
        )
    with clock.at(27):
        services.grant_create(
            profile=pllc.profile, method=AccessGrant.Method.CONNECTION_REQUEST, actor=staff
        )
    with clock.at(24):  # due in 6 days: the provider must answer
        services.development_open(
            enrollment=enrollment,
            actor=staff,
            asked="A signed copy of the lease for your practice location",
            holder=Holder.PROVIDER,
        )
    with clock.at(5):
        services.development_record_answered(request=address, actor=staff)
        services.round_open_revision(
            enrollment=enrollment,
            actor=staff,
            reason="Practice location corrected after the contractor's request",
        )
    with clock.at(20):
        office = client_services.delegate_save(
            client=rivera,
            actor=provider,
            name="Olivia Office",
            email="office@riveratherapy.example",
            title="Office manager",
            roles={individual: CMSRole.ACCESS_MANAGER, pllc.profile: CMSRole.ACCESS_MANAGER},
        )
    user = ensure_user(office.email, office.name, totp=False)
    Membership.objects.get_or_create(user=user, firm=firm, defaults={"role": Role.CLIENT})
    type(office).objects.filter(pk=office.pk).update(user=user)


def seed_okafor(firm, staff, clock: DemoClock) -> None:
    """A wet-signed statement to upload in PECOS, at day 18 of its 20; a reassignment of
    benefits to Lakeside Medical Group signed by Okafor and waiting on the group's Delegated
    Official (Grace Park, who has her own login)."""
    with clock.at(75):
        okafor = _client(
            firm,
            staff,
            first="Chidi",
            last="Okafor",
            credentials="MD",
            email="okafor@clinic.example",
            npi=npi_with_check_digit("198765432"),
            actor=staff,
        )
        individual = _individual(okafor)
        grant = services.grant_create(
            profile=individual, method=AccessGrant.Method.CONNECTION_REQUEST, actor=staff
        )
    with clock.at(72):
        services.grant_mark_active(grant=grant, actor=staff)
    with clock.at(70):
        enrollment = services.enrollment_create(
            profile=individual, kind=Enrollment.Kind.REVALIDATION, actor=staff
        )
        group = client_services.organization_add(
            client=okafor,
            legal_name="Lakeside Medical Group",
            kind=Organization.Kind.GROUP,
            npi=npi_with_check_digit("187654321"),
            actor=staff,
        )
        administrator = client_services.delegate_save(
            client=okafor,
            actor=staff,
            name="Grace Park",
            email="grace@lakesidegroup.example",
            title="Practice administrator, Lakeside Medical Group",
            roles={},
        )
        client_services.official_save(
            organization=group,
            actor=staff,
            role=Official.Role.DELEGATED,
            delegate=administrator,
        )
        reassignment = services.enrollment_create(
            profile=individual, kind=Enrollment.Kind.REASSIGNMENT, actor=staff
        )
    user = ensure_user(administrator.email, administrator.name, totp=False)
    Membership.objects.get_or_create(user=user, firm=firm, defaults={"role": Role.CLIENT})
    type(administrator).objects.filter(pk=administrator.pk).update(user=user)
    _provider_account(okafor, firm)
    with clock.at(18):
        services.round_open(enrollment=enrollment, actor=staff, method=SignatureRound.Method.UPLOAD)
    with clock.at(3):  # the surrogate to-do names the firm as registered in I&A
        services.grant_create(
            profile=group.profile, method=AccessGrant.Method.ADD_SURROGATE, actor=staff
        )
    # The reassignment needs both signatures: Okafor's is in, the group's official's is not.
    with clock.at(6):
        both = services.round_open(enrollment=reassignment, actor=staff)
    provider = User.objects.get(email=okafor.email)
    with clock.at(4):
        services.round_claim_signed(
            signature_round=both,
            party=Party(name=okafor.display_name, is_provider=True),
            actor=provider,
        )
    with clock.at(3):
        services.signer_confirm(signer=both.signers.get(is_provider=True), actor=staff)


def seed_expired(firm, staff, clock: DemoClock) -> None:
    """A connection request that expired unanswered and waits to be sent again; an initial
    enrollment denied 20 days ago, inside its reconsideration window."""
    with clock.at(40):
        client = _client(
            firm,
            staff,
            first="Beatrice",
            last="Lindqvist",
            credentials="PsyD",
            email="lindqvist@clinic.example",
            npi=npi_with_check_digit("176543210"),
            actor=staff,
        )
        grant = services.grant_create(
            profile=_individual(client), method=AccessGrant.Method.CONNECTION_REQUEST, actor=staff
        )
        initial = services.enrollment_create(
            profile=_individual(client), kind=Enrollment.Kind.INITIAL, actor=staff
        )
    with clock.at(38):
        services.enrollment_change_state(
            enrollment=initial, to=Enrollment.State.SUBMITTED, actor=staff
        )
    with time_machine.travel(grant.deadline + timedelta(minutes=5), tick=False):
        services.grant_expire(grant=grant)
    with clock.at(20):
        services.enrollment_record_outcome(
            enrollment=initial,
            outcome=Enrollment.State.DENIED,
            reason="Not licensed in the state of the practice location when submitted",
            actor=staff,
        )


def seed_assorted(
    firm: Firm, staff_members: list[User], clock: DemoClock, *, count: int, seed: int
) -> None:
    """About `count` clients in assorted states so the caseload looks like a real one."""
    # bandit: repeatable demo data, not a secret
    rng = random.Random(seed)  # nosec B311
    for index in range(count):
        staff = staff_members[index % len(staff_members)]
        first, last = rng.choice(FIRST), LAST[index % len(LAST)]
        started = rng.randint(3, 90)
        with clock.at(started):
            client = _client(
                firm,
                staff,
                first=first,
                last=f"{last}",
                credentials=rng.choice(CREDENTIALS),
                email=f"{first.lower()}.{last.lower()}{index}@{firm.slug}-clients.example",
                npi=_npi(rng),
                actor=staff,
            )
            profiles = [_individual(client)]
            if rng.random() < 0.4:
                kind = organization_kind(
                    legal_name := f"{last} {rng.choice(ORGANIZATION_SUFFIXES)}"
                )
                organization = client_services.organization_add(
                    client=client,
                    legal_name=legal_name,
                    kind=kind,
                    actor=staff,
                    provider_is_authorized_official=kind != Organization.Kind.GROUP,
                )
                if kind == Organization.Kind.GROUP:  # a group's official is someone else
                    client_services.official_save(
                        organization=organization,
                        actor=staff,
                        role=Official.Role.AUTHORIZED,
                        name=f"{rng.choice(FIRST)} {last}-Hale",
                        email=f"administrator@{last.lower()}group.example",
                    )
                profiles.append(organization.profile)
        for profile in profiles:
            _advance_profile(profile, staff, clock, rng, started)


def _advance_profile(
    profile: Profile, staff: User, clock: DemoClock, rng: random.Random, started: int
) -> None:
    pending = rng.random() < 0.45  # still waiting on the provider, within the 30 days
    sent = rng.randint(1, 26) if pending else max(started - rng.randint(0, 3), 8)
    with clock.at(sent):
        grant = services.grant_create(
            profile=profile,
            method=rng.choice(
                [AccessGrant.Method.CONNECTION_REQUEST] * 4
                + [AccessGrant.Method.ADD_STAFF, AccessGrant.Method.ADD_SURROGATE]
            ),
            requested_role=CMSRole.ACCESS_MANAGER,
            actor=staff,
        )
    if pending:
        return
    done = max(sent - rng.randint(1, 6), 0.5)
    with clock.at(done):
        services.grant_mark_active(grant=grant, actor=staff)
        kinds = list(Enrollment.Kind)
        if not (profile.is_individual and profile.client.organizations.exists()):
            kinds.remove(Enrollment.Kind.REASSIGNMENT)  # to one of their organizations
        enrollment = services.enrollment_create(
            profile=profile, kind=rng.choice(kinds), actor=staff
        )
    if rng.random() < 0.3:
        return
    asked = max(done - rng.randint(1, 10), 0.3)
    with clock.at(asked):
        signature_round = services.round_open(
            enrollment=enrollment,
            actor=staff,
            method=(
                rng.choice([SignatureRound.Method.UPLOAD, SignatureRound.Method.PAPER])
                if rng.random() < 0.15
                else SignatureRound.Method.ELECTRONIC
            ),
        )
    if rng.random() < 0.4 or signature_round.is_paper:
        return
    signed = max(asked - rng.randint(1, 8), 0.2)
    with clock.at(signed):
        services.round_confirm(signature_round=signature_round, actor=staff)
    if rng.random() < 0.5:
        later = max(signed - rng.randint(1, 10), 0.1)
        with clock.at(later):
            if rng.random() < 0.5:
                services.development_open(
                    enrollment=enrollment,
                    actor=staff,
                    asked="Updated practice location details",
                    holder=Holder.FIRM,
                )
            else:
                services.enrollment_record_outcome(
                    enrollment=enrollment,
                    outcome=Enrollment.State.APPROVED,
                    effective_date=timezone.localdate(timezone=profile.firm.zone),
                    actor=staff,
                )


# A one-page PDF, as a scanner makes them: what the demo's "uploaded" documents hold.
DEMO_PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 612 792]>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)
REVALIDATION_SAMPLE = Path(settings.BASE_DIR) / "tests" / "data" / "revalidation_sample.csv"


def _document(name: str = "scan.pdf") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, DEMO_PDF, content_type="application/pdf")


def _end_of_month(day: date, months_ahead: int) -> date:
    month_index = day.month - 1 + months_ahead
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, calendar.monthrange(year, month)[1])


def seed_credentials(firm, staff, clock: DemoClock) -> None:
    """Rivera's credentials file: a malpractice COI expiring in 12 days, a Texas license
    expired last week, a DEA registration her office manager sent (awaiting review), a board
    certificate rejected with its reason (back on her to-dos), and CAQH re-attestation due in
    9 days."""
    rivera = Client.objects.get(firm=firm, npi="1234567893")
    individual = _individual(rivera)
    party = Party(name=rivera.display_name, is_provider=True)
    today = clock.start.astimezone(firm.zone).date()

    def kind(code):
        return credentials.kind_for(firm, code)

    with clock.at(353):
        credentials.credential_add(
            profile=individual,
            kind=kind("malpractice"),
            actor=staff,
            number="MPL-2231-77",
            issuer="Texas Medical Liability Trust",
            issued_on=today - timedelta(days=353),
            expires_on=today + timedelta(days=12),
            upload=_document(),
        )
    with clock.at(700):
        credentials.credential_add(
            profile=individual,
            kind=kind("state_license"),
            actor=staff,
            number="LCSW-58213",
            state_code="TX",
            issuer="Texas Behavioral Health Executive Council",
            issued_on=today - timedelta(days=737),
            expires_on=today - timedelta(days=7),
            upload=_document(),
        )
    with clock.at(5):
        dea = credentials.credential_request(
            profile=individual,
            kind=kind("dea"),
            actor=staff,
            state_code="TX",
            note="Your current DEA registration certificate for Texas",
            due_on=today + timedelta(days=9),
        )
    office = rivera.delegates.get()
    office_party = Party(
        name=office.name,
        is_provider=False,
        roles={role.profile_id: role.cms_role for role in office.roles.all()},
        delegate_id=office.pk,
    )
    with clock.at(1):
        credentials.credential_upload(
            credential=dea, upload=_document(), actor=office.user, party=office_party
        )
    with clock.at(10):
        board = credentials.credential_request(
            profile=individual,
            kind=kind("board"),
            actor=staff,
            note="Your board certificate, showing its valid-through date",
            due_on=today + timedelta(days=11),
        )
    with clock.at(6):
        credentials.credential_upload(
            credential=board, upload=_document(), actor=rivera.user, party=party
        )
    with clock.at(3):
        credentials.credential_reject(
            credential=board,
            actor=staff,
            reason="The scan cuts off the valid-through date: please send the whole page",
        )
    with clock.at(111):
        credentials.credential_add(
            profile=individual,
            kind=kind("caqh"),
            actor=staff,
            number="14820397",
            issued_on=today - timedelta(days=111),
        )


def seed_revalidations(firm, staff, clock: DemoClock) -> None:
    """CMS's revalidation list, imported as staff would: the repo's sample with its dates
    moved to this demo's months (Rivera Therapy PLLC due at the end of next month), so the
    demo stays current whenever it is seeded."""
    rows = list(csv.DictReader(io.StringIO(REVALIDATION_SAMPLE.read_text())))
    # The sample's Rivera Therapy PLLC is due 08/31/2026: every date moves by as many months
    # as it takes that one to the end of next month.
    today = clock.start.astimezone(firm.zone).date()
    shift = (today.year * 12 + today.month + 1) - (2026 * 12 + 8)

    def moved(text: str) -> str:
        if not text or text == "TBD":
            return text
        day = date(int(text[6:]), int(text[:2]), int(text[3:5]))
        return f"{_end_of_month(day, shift):%m/%d/%Y}"

    for row in rows:
        for column in ("Revalidation Due Date", "Adjusted Due Date"):
            row[column] = moved(row[column])
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    revalidation.apply(firm=firm, parsed=revalidation.parse_csv(out.getvalue()), actor=staff)


def seed_workflows(firms: dict[str, Firm]) -> bool:
    """Seed once: a second run finds Rivera already there and changes nothing."""
    northwind, bluebird = firms["northwind"], firms["bluebird"]
    if Client.objects.filter(firm=northwind, npi="1234567893").exists():
        return False
    clock = DemoClock()
    staff = {
        m.user.email: m.user
        for m in Membership.objects.select_related("user").filter(firm__in=firms.values())
    }
    nw_staff, bb_staff = staff["staff@northwind.example"], staff["staff@bluebird.example"]
    seed_rivera(northwind, nw_staff, clock)
    seed_okafor(northwind, nw_staff, clock)
    seed_expired(northwind, nw_staff, clock)
    seed_credentials(northwind, nw_staff, clock)
    seed_revalidations(northwind, nw_staff, clock)
    calendar_feed_rotate(membership=Membership.objects.get(firm=northwind, user=nw_staff))
    seed_assorted(northwind, [nw_staff, staff["admin@northwind.example"]], clock, count=37, seed=1)
    with clock.at(12):
        chen = _client(
            bluebird,
            bb_staff,
            first="Wei",
            last="Chen",
            credentials="DO",
            email="chen@clinic.example",
            npi=npi_with_check_digit("165432109"),
            actor=bb_staff,
        )
        services.grant_create(
            profile=_individual(chen), method=AccessGrant.Method.CONNECTION_REQUEST, actor=bb_staff
        )
    _provider_account(chen, bluebird)
    seed_assorted(bluebird, [bb_staff, staff["admin@bluebird.example"]], clock, count=39, seed=2)
    _history_was_sent(clock.start)
    _history_was_read(clock.start)
    return True


def _history_was_sent(start) -> None:
    """Emails due before the seed's "now" went out back then: don't send them all again on
    the first `make run`. Their in-app copies stay in the inboxes. Each demo provider's and
    delegate's newest one is the exception: it goes out when the demo starts, so var/mail/
    holds what they would find in their inbox (its sign-in link opens their to-do)."""
    past = Notification.objects.filter(
        channel=Notification.Channel.EMAIL,
        state=Notification.State.SCHEDULED,
        due_at__lt=start,
    )
    newest = [
        row.pk
        for email, _ in DEMO_PROVIDERS
        if (row := past.filter(to_email=email).order_by("-due_at", "-id").first())
    ]
    past.exclude(pk__in=newest).update(state=Notification.State.SENT, sent_at=F("due_at"))


# The demo's people use the portal daily: what reached their inbox before the last two days
# was read then, and of the last two days' the five newest wait unread (not 46 at once).
UNREAD_DAYS = 2
UNREAD_AT_MOST = 5


def _history_was_read(start) -> None:
    in_app = Notification.objects.filter(
        channel=Notification.Channel.IN_APP,
        due_at__lte=start,
        state__in=[Notification.State.SCHEDULED, Notification.State.SENT],  # not cancelled
    )
    recent = in_app.filter(due_at__gt=start - timedelta(days=UNREAD_DAYS))
    unread = set()
    for recipient in recent.order_by().values_list("recipient", flat=True).distinct():
        newest = recent.filter(recipient=recipient).order_by("-due_at", "-id")
        unread |= set(newest.values_list("pk", flat=True)[:UNREAD_AT_MOST])
    in_app.filter(read_at__isnull=True).exclude(pk__in=unread).update(read_at=F("due_at"))


DEMO_PROVIDERS = [
    ("rivera@clinic.example", "Northwind provider (Rivera Therapy PLLC)"),
    ("office@riveratherapy.example", "Northwind delegate of Rivera (Access Manager)"),
    ("okafor@clinic.example", "Northwind provider (paper signature, reassignment)"),
    (
        "grace@lakesidegroup.example",
        "Northwind: Lakeside Medical Group's Delegated Official (signs Okafor's reassignment)",
    ),
    ("chen@clinic.example", "Bluebird provider"),
]


def demo_calendar_address() -> str:
    """The calendar feed address of Northwind's staff member, for `make run` to print."""
    membership = (
        Membership.objects.select_related("firm", "user")
        .filter(user__email="staff@northwind.example", firm__slug="northwind")
        .first()
    )
    address = feed_address(membership)
    return address.https if address else ""
