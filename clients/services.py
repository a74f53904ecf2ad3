"""Writes to provider clients. Each is atomic and leaves an event on the client's timeline."""

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Model
from django.utils import timezone

from portal import audit
from portal.errors import DomainError
from portal.models import Firm, Invitation, Membership, Role, User, normalize_email
from portal.services import invitation_create
from portal.signals import address_edited

from .models import (
    Client,
    CMSRole,
    Delegate,
    DelegateRole,
    IAController,
    Official,
    Organization,
    Profile,
)
from .signals import client_reassigned

CLIENT_FIELDS = ("first_name", "last_name", "credentials", "npi", "email", "phone", "notes")


def record(verb: str, client: Client, *, actor: User | None, target: Model | None = None, **data):
    audit.record(
        verb,
        actor=actor,
        firm=client.firm,
        target=target or client,
        target_label=str(target or client),
        client_uuid=client.public_id,
        data=data,
    )
    Client.objects.filter(pk=client.pk).update(last_activity_at=timezone.now())


def field_problems(instance: Model, names: list[str]) -> list[str]:
    """What the model's own field rules (lengths, formats, validators) and the database
    (no NUL characters in text) would refuse in `names`, as "label: problem" lines."""
    problems = []
    for name in names:
        value = getattr(instance, name)
        label = instance._meta.get_field(name).verbose_name
        if isinstance(value, str) and "\x00" in value:
            problems.append(f"{label}: contains an invisible control character (NUL)")
    try:
        excluded = [f.name for f in instance._meta.fields if f.name not in names]
        instance.clean_fields(exclude=excluded)
    except ValidationError as exc:
        for name, messages in exc.message_dict.items():
            label = instance._meta.get_field(name).verbose_name
            problems.extend(f"{label}: {message}" for message in messages)
    return problems


def _check(instance: Model, names: list[str]) -> None:
    """Refuse, before writing, anything the model or the database would refuse."""
    if problems := field_problems(instance, names):
        raise DomainError("; ".join(problems))


def _ensure_staff_of(firm: Firm, user: User | None) -> None:
    if user is not None and not Membership.objects.firm_staff(firm).filter(user=user).exists():
        raise DomainError("Assign the client to an active member of your firm.")


@transaction.atomic
def client_create(
    *, firm: Firm, actor: User, assigned_staff: User | None = None, **fields
) -> Client:
    """A new provider client, with their individual profile."""
    _ensure_staff_of(firm, assigned_staff)
    fields["email"] = normalize_email(fields.get("email", ""))
    client = Client(firm=firm, assigned_staff=assigned_staff, **fields)
    _check(client, list(fields))
    try:
        with transaction.atomic():
            client.save()
    except IntegrityError:
        raise DomainError(f"A client with NPI {client.npi} already exists in your firm.") from None
    Profile.objects.create(firm=firm, client=client, kind=Profile.Kind.INDIVIDUAL)
    record("client.created", client, actor=actor)
    return client


@transaction.atomic
def client_update(*, client: Client, actor: User, **fields) -> Client:
    client = Client.objects.select_for_update().get(pk=client.pk)
    if "assigned_staff" in fields:
        _ensure_staff_of(client.firm, fields["assigned_staff"])
    if "email" in fields:
        fields["email"] = normalize_email(fields["email"])
    old_email = client.email
    changed = [name for name, value in fields.items() if getattr(client, name) != value]
    if not changed:
        return client
    for name in changed:
        setattr(client, name, fields[name])
    _check(client, [name for name in changed if name != "assigned_staff"])
    try:
        with transaction.atomic():
            client.save(update_fields=changed)
    except IntegrityError:
        raise DomainError(f"Another client in your firm has NPI {client.npi}.") from None
    if "email" in changed:
        address_edited.send(
            sender=Client, firm=client.firm, old=old_email, new=client.email, actor=actor
        )
    if "assigned_staff" in changed:
        client_reassigned.send(sender=Client, client=client)
    record("client.updated", client, actor=actor, fields=sorted(changed))
    return client


@transaction.atomic
def organization_add(
    *,
    client: Client,
    legal_name: str,
    kind: str,
    npi: str = "",
    actor: User,
    provider_is_authorized_official: bool = False,
) -> Organization:
    """The provider's company, and its organizational profile (access is granted per profile);
    with the provider as its Authorized Official when staff say so (a solo PLLC, usually)."""
    organization = Organization(
        firm=client.firm, client=client, legal_name=legal_name.strip(), kind=kind, npi=npi
    )
    _check(organization, ["legal_name", "kind", "npi"])
    try:
        with transaction.atomic():
            organization.save()
    except IntegrityError:
        raise DomainError(f"{client.display_name} already has “{legal_name}”.") from None
    Profile.objects.create(
        firm=client.firm,
        client=client,
        organization=organization,
        kind=Profile.Kind.ORGANIZATIONAL,
    )
    record("organization.added", client, actor=actor, target=organization)
    if provider_is_authorized_official:
        official_save(
            organization=organization,
            actor=actor,
            role=Official.Role.AUTHORIZED,
            is_provider=True,
        )
    return organization


@transaction.atomic
def official_save(
    *,
    organization: Organization,
    actor: User,
    role: str,
    name: str = "",
    email: str = "",
    is_provider: bool = False,
    delegate: Delegate | None = None,
) -> Official:
    """Record one of the organization's Authorized or Delegated Officials: the provider, a
    delegate, or someone with a name and email. The email is the one entered in PECOS for
    them (by default the person's own)."""
    client = organization.client
    if role not in Official.Role.values:
        raise DomainError("Choose Authorized Official or Delegated Official.")
    if is_provider and delegate is not None:
        raise DomainError("An official is the provider, a delegate, or someone else: one.")
    if delegate is not None and delegate.client_id != client.pk:
        raise DomainError("That delegate is not one of this client's.")
    if is_provider:
        name, email = name or client.display_name, email or client.email
    elif delegate is not None:
        name, email = name or delegate.name, email or delegate.email
    official = Official(
        firm=organization.firm,
        organization=organization,
        role=role,
        name=name.strip(),
        email=normalize_email(email),
        is_provider=is_provider,
        delegate=delegate,
    )
    _check(official, ["name", "email"])
    try:
        with transaction.atomic():
            official.save()
    except IntegrityError:
        raise DomainError(
            f"{official.email} is already an official of {organization.legal_name}."
        ) from None
    record(
        "official.saved",
        client,
        actor=actor,
        target=official,
        organization=organization.legal_name,
        role=role,
    )
    return official


@transaction.atomic
def official_remove(*, official: Official, actor: User) -> Official:
    official = (
        Official.objects.select_for_update(of=("self",))
        .select_related("organization__client")
        .get(pk=official.pk)
    )
    if not official.is_active:
        raise DomainError(f"{official.name} was already removed.")
    official.is_active = False
    official.save(update_fields=["is_active"])
    # The record no longer carries its address (a bouncing mark goes if none else does).
    address_edited.send(
        sender=Official, firm=official.firm, old=official.email, new="", actor=actor
    )
    record("official.removed", official.organization.client, actor=actor, target=official)
    return official


@transaction.atomic
def client_update_ia(
    *,
    client: Client,
    actor: User,
    ia_controller: str,
    ia_controller_note: str,
    password_reset_likely: bool,
) -> Client:
    """Who controls the provider's I&A login (one per person, whatever their profiles), and
    whether its password has likely expired."""
    client = Client.objects.select_for_update().get(pk=client.pk)
    client.ia_controller = ia_controller
    client.ia_controller_note = ia_controller_note
    client.password_reset_likely = password_reset_likely
    client.save(update_fields=["ia_controller", "ia_controller_note", "password_reset_likely"])
    record(
        "client.ia_updated",
        client,
        actor=actor,
        ia_controller=ia_controller,
        password_reset_likely=password_reset_likely,
    )
    return client


@transaction.atomic
def ia_regain_claim(*, client: Client, actor: User) -> Client:
    """The provider says they have their I&A login back: staff check it next."""
    client = Client.objects.select_for_update().get(pk=client.pk)
    if client.ia_controller == IAController.REGAIN_CLAIMED:
        raise DomainError("You already told us you have it back; we are checking it.")
    if client.ia_controller != IAController.SOMEONE_ELSE:
        raise DomainError("Nothing to regain: your I&A login is recorded as yours.")
    client.ia_controller = IAController.REGAIN_CLAIMED
    client.save(update_fields=["ia_controller"])
    record("client.ia_regain_claimed", client, actor=actor, to=client.ia_controller)
    return client


@transaction.atomic
def ia_password_reset_done(*, client: Client, actor: User) -> Client:
    """The provider reset their I&A password: the to-do goes away."""
    client = Client.objects.select_for_update().get(pk=client.pk)
    if not client.password_reset_likely:
        raise DomainError("Already done: thank you.")
    client.password_reset_likely = False
    client.save(update_fields=["password_reset_likely"])
    record("client.ia_password_reset", client, actor=actor)
    return client


@transaction.atomic
def delegate_save(
    *,
    client: Client,
    actor: User,
    name: str,
    email: str,
    title: str = "",
    roles: dict[Profile, str],
    delegate: Delegate | None = None,
) -> Delegate:
    """Add a delegate, or change one, with their CMS role on each of the client's profiles."""
    email = normalize_email(email)
    if any(profile.client_id != client.pk for profile in roles):
        raise DomainError("A delegate's roles must be on this client's profiles.")
    if any(role not in CMSRole.values for role in roles.values()):
        raise DomainError("Choose Authorized Official, Access Manager or Staff End User.")
    if delegate is None:
        # Someone removed earlier comes back as the same record: their history stays with it.
        delegate = Delegate.objects.select_for_update().filter(
            client=client, email__iexact=email, is_active=False
        ).first() or Delegate(firm=client.firm, client=client)
        delegate.is_active = True
    old_email = delegate.email  # "" for a new delegate
    delegate.name, delegate.email, delegate.title = name.strip(), email, title.strip()
    try:
        with transaction.atomic():
            delegate.save()
    except IntegrityError:
        raise DomainError(f"{email} is already a delegate of {client.display_name}.") from None
    if old_email and old_email != email:
        address_edited.send(
            sender=Delegate, firm=client.firm, old=old_email, new=email, actor=actor
        )
    DelegateRole.objects.filter(delegate=delegate).exclude(profile__in=list(roles)).delete()
    for profile, cms_role in roles.items():
        DelegateRole.objects.update_or_create(
            delegate=delegate, profile=profile, defaults={"cms_role": cms_role}
        )
    record(
        "delegate.saved",
        client,
        actor=actor,
        target=delegate,
        roles={profile.label: role for profile, role in roles.items()},
    )
    return delegate


@transaction.atomic
def delegate_remove(*, delegate: Delegate, actor: User) -> Delegate:
    delegate = Delegate.objects.select_for_update().select_related("client").get(pk=delegate.pk)
    if not delegate.is_active:
        raise DomainError(f"{delegate.name} was already removed.")
    delegate.is_active = False
    delegate.save(update_fields=["is_active"])
    address_edited.send(
        sender=Delegate, firm=delegate.firm, old=delegate.email, new="", actor=actor
    )
    record("delegate.removed", delegate.client, actor=actor, target=delegate)
    return delegate


# --- portal accounts for providers and delegates ----------------------------------------


@transaction.atomic
def portal_invite(*, subject: Client | Delegate, actor: User) -> Invitation:
    """Invite a provider or delegate to the portal. Everyone gets an invitation to accept,
    whether or not they have an account: nobody is linked to a client record (and shown its
    data) without accepting, and the answer does not tell who has an account."""
    client = subject if isinstance(subject, Client) else subject.client
    if subject.user_id:
        raise DomainError(f"{subject.email} already has portal access.")
    invitation = invitation_create(
        firm=client.firm,
        email=subject.email,
        role=Role.CLIENT,
        invited_by=actor,
        subject_uuid=subject.public_id,
    )
    record("portal.invited", client, actor=actor, target=subject)
    return invitation


@transaction.atomic
def link_portal_user(*, subject_uuid, user: User, actor: User | None = None) -> None:
    """After an accepted invitation: the account now stands for this provider or delegate."""
    client = Client.objects.filter(public_id=subject_uuid).first()
    if client is not None:
        Client.objects.filter(pk=client.pk, user__isnull=True).update(user=user)
        record("portal.linked", client, actor=actor or user, target=client)
        return
    delegate = Delegate.objects.select_related("client").filter(public_id=subject_uuid).first()
    if delegate is not None:
        Delegate.objects.filter(pk=delegate.pk, user__isnull=True).update(user=user)
        record("portal.linked", delegate.client, actor=actor or user, target=delegate)
