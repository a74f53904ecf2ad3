"""The credentials file: every change to a credential, one function per transition, and its
clock.

A credential's clock is the one deadline it keeps now (`clock_of`): while the provider owes
it, the request's due date (or its expiry, if sooner); while it is on file or being reviewed,
its expiry. The caseload's next deadline, the stuck report, the calendar feed and the
reminders all read that one stored `Credential.deadline`: a clock like the access and
signature clocks, not a parallel system.
"""

import contextlib
import copy
from datetime import date, timedelta

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from clients.models import Client, Profile
from portal import audit
from portal.errors import is_disk_full
from portal.models import Firm, User

from . import notify
from .deadlines import clock_of, days_left, expiry_of, renewal_horizon
from .errors import TransitionError
from .files import check_upload, stored_name
from .models import Credential, CredentialFile, CredentialKind, SignatureRound
from .open_steps import one_refresh, refresh_read_models
from .rules import Party, Step
from .services import _ensure_may, _lock, _move, _record

# The catalogue a firm starts with, and why each kind has what it has:
# - a state license and a DEA registration are per state, numbered, and expire (licenses
#   every one to three years, DEA every three);
# - board certification and malpractice insurance have an issuer (the board, the carrier)
#   and an end date (the certificate's "valid through", the policy period);
# - a CV and a W-9 do not expire (a CV is refreshed at revalidation, a W-9 when the tax
#   details change);
# - CAQH ProView must be re-attested every 120 days (CAQH's rule): its "number" is the CAQH
#   Provider ID, its date the last attestation, and it needs no file;
# - the wet-signed certification statement of an "upload" signature round.
# Medicare revalidation is not in the catalogue: it is an enrollment of kind revalidation,
# with its due date on it (one place for that rule).
CAQH_REATTEST_DAYS = 120
DEFAULT_KINDS = [
    {
        "code": CredentialKind.Code.STATE_LICENSE,
        "name": "State license",
        "number_label": "License number",
        "has_state": True,
        "issuer_label": "Board",
        "expires": True,
    },
    {
        "code": CredentialKind.Code.DEA,
        "name": "DEA registration",
        "number_label": "DEA number",
        "has_state": True,
        "expires": True,
    },
    {
        "code": CredentialKind.Code.BOARD,
        "name": "Board certification",
        "number_label": "Certificate number",
        "issuer_label": "Board",
        "expires": True,
    },
    {
        "code": CredentialKind.Code.MALPRACTICE,
        "name": "Malpractice certificate of insurance",
        "number_label": "Policy number",
        "issuer_label": "Carrier",
        "expires": True,
    },
    {"code": CredentialKind.Code.CV, "name": "CV"},
    {"code": CredentialKind.Code.W9, "name": "W-9"},
    {
        "code": CredentialKind.Code.CAQH,
        "name": "CAQH ProView attestation",
        "number_label": "CAQH Provider ID",
        "renews_every_days": CAQH_REATTEST_DAYS,
        "needs_file": False,
    },
    {
        "code": CredentialKind.Code.CERTIFICATION_STATEMENT,
        "name": "Signed certification statement",
    },
    {"code": CredentialKind.Code.OTHER, "name": "Other document"},
]


def catalogue(firm: Firm, *, active_only: bool = True) -> list[CredentialKind]:
    """The firm's credential kinds; a firm that has none yet gets the defaults (once)."""
    kinds = list(CredentialKind.objects.filter(firm=firm))
    if not kinds:
        CredentialKind.objects.bulk_create(
            [CredentialKind(firm=firm, **kind) for kind in DEFAULT_KINDS],
            ignore_conflicts=True,
        )
        kinds = list(CredentialKind.objects.filter(firm=firm))
    return [kind for kind in kinds if kind.is_active or not active_only]


@transaction.atomic
@one_refresh
def credential_kind_add(
    *,
    firm: Firm,
    actor: User,
    name: str,
    number_label: str = "",
    has_state: bool = False,
    issuer_label: str = "",
    expires: bool = False,
    needs_file: bool = True,
) -> CredentialKind:
    """A firm admin adds a kind of its own to the catalogue (a hospital privileges letter, a
    state controlled-substance registration...)."""
    name = " ".join(name.split())
    if not name:
        raise TransitionError("Give the kind a name.")
    catalogue(firm)
    if CredentialKind.objects.filter(firm=firm, name__iexact=name).exists():
        raise TransitionError(f"“{name}” is already in your catalogue.")
    kind = CredentialKind.objects.create(
        firm=firm,
        name=name[:100],
        number_label=number_label.strip()[:40],
        has_state=has_state,
        issuer_label=issuer_label.strip()[:40],
        expires=expires,
        needs_file=needs_file,
    )
    audit.record(
        "credential_kind.added", actor=actor, firm=firm, target=kind, target_label=kind.name
    )
    return kind


@transaction.atomic
@one_refresh
def credential_kind_set_active(*, kind: CredentialKind, actor: User, active: bool):
    """Take a kind out of the catalogue's choices (credentials of that kind stay), or back."""
    if kind.is_active == active:
        raise TransitionError("Nothing changed.")
    CredentialKind.objects.filter(pk=kind.pk).update(is_active=active)
    audit.record(
        "credential_kind.activated" if active else "credential_kind.deactivated",
        actor=actor,
        firm=kind.firm,
        target=kind,
        target_label=kind.name,
    )
    return kind


def kind_for(firm: Firm, code: str) -> CredentialKind:
    """A kind of the default catalogue, by its code (the demo, round statements, tests)."""
    return next(kind for kind in catalogue(firm, active_only=False) if kind.code == code)


# --- the clock --------------------------------------------------------------------------


def _new(**fields) -> Credential:
    """A new credential, its clock stored with it (its event then refreshes the client's
    next deadline)."""
    credential = Credential(**fields)
    credential.deadline = clock_of(credential, credential.firm)
    credential.save()
    return credential


# `_move`'s own arguments; the rest are the credential's fields.
MOVE_ARGUMENTS = {"actor", "verb", "action", "reason", "cms_date", "extra"}


def _move_with_clock(credential: Credential, to: str, **arguments) -> Credential:
    """`_move`, storing the clock the credential keeps in its new state in the same UPDATE,
    so the move's event refreshes the client's next deadline once, with the new clock."""
    after = copy.copy(credential)
    after.state = to
    for name, value in arguments.items():
        if name not in MOVE_ARGUMENTS:
            setattr(after, name, value)
    return _move(credential, to, deadline=clock_of(after, credential.firm), **arguments)


def _set_clock(credential: Credential) -> None:
    """Store the credential's clock again, and the client's next deadline and open steps
    (after a change made outside the moves above)."""
    credential.deadline = clock_of(credential, credential.firm)
    Credential.objects.filter(pk=credential.pk).update(deadline=credential.deadline)
    refresh_read_models(Client.objects.filter(pk=credential.profile.client_id))


# --- checks -----------------------------------------------------------------------------


def _details(kind: CredentialKind, *, number: str, state_code: str, issuer: str) -> dict:
    state_code = state_code.strip().upper()
    if kind.has_state and not state_code:
        raise TransitionError(f"A {kind.in_sentence} is per state: choose its state.")
    return {
        "number": number.strip() if kind.number_label else "",
        "state_code": state_code if kind.has_state else "",
        "issuer": issuer.strip() if kind.issuer_label else "",
    }


def _dates(firm: Firm, kind: CredentialKind, *, issued_on, expires_on) -> dict:
    today = timezone.now().astimezone(firm.zone).date()
    if issued_on and issued_on > today:
        raise TransitionError("The issue date is in the future: give the day on the document.")
    if kind.renews_every_days and not issued_on:
        raise TransitionError(f"Give the date of the last {kind.in_sentence}.")
    if kind.expires and not expires_on:
        raise TransitionError(
            f"Give the expiry date printed on the {kind.in_sentence}: its reminders count from it."
        )
    if issued_on and expires_on and expires_on < issued_on:
        raise TransitionError("The expiry date is before the issue date.")
    return {
        "issued_on": issued_on,
        "expires_on": expiry_of(kind, issued_on=issued_on, expires_on=expires_on),
    }


def _due(firm: Firm, due_on: date | None) -> date:
    today = timezone.now().astimezone(firm.zone).date()
    if due_on is None:
        return today + timedelta(days=14)
    if due_on < today:
        raise TransitionError("That due date has passed: give a day from today on.")
    return due_on


def _add_file(credential: Credential, upload, *, actor: User) -> CredentialFile:
    checked = check_upload(upload, max_mb=credential.firm.upload_max_mb)
    version = (credential.files.aggregate(n=Max("version"))["n"] or 0) + 1
    row = CredentialFile(
        firm=credential.firm,
        credential=credential,
        version=version,
        content_type=checked.content_type,
        size=checked.size,
        sha256=checked.sha256,
        uploaded_by=actor,
    )
    # Stored before the row commits: if the change then rolls back, the object is left
    # unreferenced (private, never listed); a stored file is never overwritten or removed.
    name = stored_name(credential.firm.public_id, checked.extension)
    try:
        row.file.save(name, checked.file, False)
    except OSError as exc:
        if not is_disk_full(exc):
            raise
        # What was written of it is nobody's file (its name is new, and no row names it):
        # give its space back.
        with contextlib.suppress(Exception):
            if not CredentialFile.objects.filter(file=name).exists():
                row.file.storage.delete(name)
        raise TransitionError(
            "The server's disk is full, so the document was not saved and nothing changed. "
            "Try again later: the people who run credportal have to make room first."
        ) from exc
    row.save()
    return row


# --- the moves --------------------------------------------------------------------------


@transaction.atomic
@one_refresh
def credential_add(
    *,
    profile: Profile,
    kind: CredentialKind,
    actor: User,
    number: str = "",
    state_code: str = "",
    issuer: str = "",
    issued_on: date | None = None,
    expires_on: date | None = None,
    upload=None,
) -> Credential:
    """Staff record a credential they have (with its document, when the kind has one): on
    file at once, its expiry reminders scheduled."""
    firm = profile.firm
    if kind.firm_id != firm.pk:
        raise TransitionError("Choose a kind from your firm's catalogue.")
    if kind.needs_file and not upload:
        raise TransitionError(f"Upload the {kind.in_sentence}: it is kept on file.")
    credential = _new(
        firm=firm,
        profile=profile,
        kind=kind,
        state=Credential.State.ACCEPTED,
        **_details(kind, number=number, state_code=state_code, issuer=issuer),
        **_dates(firm, kind, issued_on=issued_on, expires_on=expires_on),
    )
    if upload:
        _add_file(credential, upload, actor=actor)
    _record(
        "credential.added",
        credential,
        actor=actor,
        data={"to": credential.state, "kind": kind.name, "expires_on": _iso(credential.expires_on)},
    )
    notify.credential_on_file(credential)
    return credential


@transaction.atomic
@one_refresh
def credential_request(
    *,
    profile: Profile,
    kind: CredentialKind,
    actor: User,
    note: str = "",
    due_on: date | None = None,
    state_code: str = "",
) -> Credential:
    """Staff ask the provider for a document: a to-do on their side, due on `due_on` (two
    weeks by default, never in the past), reminded on the firm's cadence."""
    return _request(
        profile=profile,
        kind=kind,
        actor=actor,
        note=note,
        due_on=_due(profile.firm, due_on),
        state_code=state_code,
    )


def _request(
    *,
    profile: Profile,
    kind: CredentialKind,
    actor: User,
    note: str,
    due_on: date,
    state_code: str = "",
    signature_round: SignatureRound | None = None,
) -> Credential:
    firm = profile.firm
    if kind.firm_id != firm.pk:
        raise TransitionError("Choose a kind from your firm's catalogue.")
    state_code = state_code.strip().upper() if kind.has_state else ""
    if signature_round is None and kind.code != CredentialKind.Code.OTHER:
        # One request at a time per credential: a double-clicked "Ask for it" asks once.
        # The profile's row lock makes two simultaneous requests wait for each other.
        Profile.objects.select_for_update().filter(pk=profile.pk).first()
        if Credential.objects.filter(
            profile=profile,
            kind=kind,
            state_code=state_code,
            state__in=[*Credential.OWED_STATES, Credential.State.RECEIVED],
        ).exists():
            raise TransitionError(
                f"You already asked for the {kind.in_sentence}"
                + (f" ({state_code})" if state_code else "")
                + ": it is on the provider's to-dos. Nothing was added."
            )
    credential = _new(
        firm=firm,
        profile=profile,
        kind=kind,
        state=Credential.State.REQUESTED,
        state_code=state_code,
        request_note=note.strip()[:300],
        due_on=due_on,
        signature_round=signature_round,
    )
    _record(
        "credential.requested",
        credential,
        actor=actor,
        data={"to": credential.state, "kind": kind.name, "due_on": _iso(credential.due_on)},
    )
    notify.credential_requested(credential)
    return credential


def statement_request(*, signature_round: SignatureRound, actor: User) -> Credential:
    """A round signed in ink and uploaded: the provider sends the signed certification
    statement here, due with the round's own 20-day clock (the firm uploads it in PECOS),
    overdue from the start when the round was recorded after its deadline."""
    enrollment = signature_round.enrollment
    firm = enrollment.firm
    return _request(
        profile=enrollment.profile,
        kind=kind_for(firm, CredentialKind.Code.CERTIFICATION_STATEMENT),
        actor=actor,
        note=f"Your signed certification statement for signature round {signature_round.number}"
        f" ({enrollment.get_kind_display().lower()}): a photo or scan of the page you signed",
        due_on=signature_round.deadline.astimezone(firm.zone).date(),
        signature_round=signature_round,
    )


def statement_no_longer_needed(*, signature_round: SignatureRound, actor: User | None) -> None:
    """The round closed (signed, or cancelled): a statement still owed is no longer needed."""
    for credential in Credential.objects.filter(
        signature_round=signature_round, state__in=Credential.OWED_STATES
    ):
        credential_cancel(
            credential=credential,
            actor=actor,
            reason=f"Signature round {signature_round.number} closed",
        )


@transaction.atomic
@one_refresh
def credential_request_renewal(
    *, credential: Credential, actor: User, note: str = "", due_on: date | None = None
) -> Credential:
    """Staff ask for the renewed document of a credential on file."""
    credential = _lock(credential)
    credential = _move_with_clock(
        credential,
        Credential.State.REQUESTED,
        actor=actor,
        verb="credential.requested",
        action="ask for it again",
        request_note=note.strip()[:300],
        due_on=_due(credential.firm, due_on),
        rejection_reason="",
    )
    notify.credential_requested(credential)
    return credential


def _ensure_party_may(credential: Credential, party: Party | None) -> None:
    if party is not None:
        step = Step.REATTEST_CAQH if not credential.kind.needs_file else Step.UPLOAD_DOCUMENT
        _ensure_may(party, step, credential.profile)


@transaction.atomic
@one_refresh
def credential_upload(
    *, credential: Credential, upload, actor: User, party: Party | None = None
) -> Credential:
    """A new version of the document, from the provider's side (`party`) or from staff (None):
    kept beside every earlier one, and waiting for review."""
    credential = _lock(credential)
    _ensure_party_may(credential, party)
    if credential.state == Credential.State.CANCELLED:
        raise TransitionError("This document is no longer needed; nothing was uploaded.")
    if party is not None and credential.state == Credential.State.RECEIVED:
        raise TransitionError("We already have a version of this waiting for review.")
    if party is not None and credential.state == Credential.State.ACCEPTED:
        _ensure_renewal_due(credential)
    row = _add_file(credential, upload, actor=actor)
    if credential.state != Credential.State.RECEIVED:
        credential = _move_with_clock(
            credential,
            Credential.State.RECEIVED,
            actor=actor,
            verb="credential.uploaded",
            action="upload it",
            extra={"version": row.version},
        )
    else:
        _record("credential.uploaded", credential, actor=actor, data={"version": row.version})
    notify.credential_received(credential, by=party.name if party else "")
    return credential


@transaction.atomic
@one_refresh
def credential_claim_attested(*, credential: Credential, party: Party, actor: User):
    """The provider's side says they re-attested in CAQH ProView: staff check and record the
    new date."""
    credential = _lock(credential)
    _ensure_party_may(credential, party)
    if credential.kind.needs_file:
        raise TransitionError("This needs the document itself: upload it.")
    if credential.state == Credential.State.ACCEPTED:
        _ensure_renewal_due(credential)
    credential = _move_with_clock(
        credential,
        Credential.State.RECEIVED,
        actor=actor,
        verb="credential.provider_says_done",
        action="mark it done",
        reason=f"{party.name} says it is done",
    )
    notify.credential_received(credential, by=party.name)
    return credential


@transaction.atomic
@one_refresh
def credential_accept(
    *,
    credential: Credential,
    actor: User,
    issued_on: date | None = None,
    expires_on: date | None = None,
    number: str | None = None,
    state_code: str | None = None,
    issuer: str | None = None,
) -> Credential:
    """Staff accept what arrived, with the dates read from it: the expiry reminders follow the
    new expiry, and the provider's to-do closes."""
    credential = _lock(credential)
    kind = credential.kind
    if kind.needs_file and not credential.files.exists():
        raise TransitionError("Nothing was uploaded yet: upload the document, then accept it.")
    details = _details(
        kind,
        number=credential.number if number is None else number,
        state_code=credential.state_code if state_code is None else state_code,
        issuer=credential.issuer if issuer is None else issuer,
    )
    dates = _dates(credential.firm, kind, issued_on=issued_on, expires_on=expires_on)
    previous_expiry = credential.expires_on
    credential = _move_with_clock(
        credential,
        Credential.State.ACCEPTED,
        actor=actor,
        verb="credential.accepted",
        action="accept it",
        extra={"expires_on": _iso(dates["expires_on"])},
        rejection_reason="",
        **details,
        **dates,
    )
    notify.credential_on_file(credential, previous_expiry=previous_expiry)
    return credential


@transaction.atomic
@one_refresh
def credential_reject(*, credential: Credential, actor: User, reason: str) -> Credential:
    """Staff refuse what arrived, saying why: the provider's to-do reopens with the reason."""
    credential = _lock(credential)
    reason = reason.strip()
    if not reason:
        raise TransitionError("Say why, so the provider knows what to send instead.")
    if credential.due_on is None or credential.due_on < _today(credential.firm):
        credential.due_on = _due(credential.firm, None)
    credential = _move_with_clock(
        credential,
        Credential.State.REJECTED,
        actor=actor,
        verb="credential.rejected",
        action="reject it",
        reason=reason,
        rejection_reason=reason[:300],
        due_on=credential.due_on,
    )
    notify.credential_rejected(credential)
    return credential


@transaction.atomic
@one_refresh
def credential_cancel(
    *, credential: Credential, actor: User | None, reason: str = ""
) -> Credential:
    """No longer needed (the provider left a state, a document replaced by another): its
    reminders stop; its files are kept."""
    credential = _lock(credential)
    credential = _move_with_clock(
        credential,
        Credential.State.CANCELLED,
        actor=actor,
        verb="credential.cancelled",
        action="cancel it",
        reason=reason.strip(),
    )
    notify.credential_stopped(credential)
    return credential


def _ensure_renewal_due(credential: Credential) -> None:
    """The provider's side sends a credential on file only as its renewal, from the firm's
    first reminder before it expires."""
    horizon = renewal_horizon(credential.firm)
    if not (
        credential.kind.has_expiry
        and credential.deadline is not None
        and days_left(credential.firm, credential.deadline, timezone.now()) <= horizon
    ):
        raise TransitionError(
            "We have this on file and need nothing from you now: we will ask when it is due "
            "for renewal."
        )


def _today(firm: Firm) -> date:
    return timezone.now().astimezone(firm.zone).date()


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day else None
