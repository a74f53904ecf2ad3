"""Who may do each provider step, from the provider guide.

- An Authorized Official can do everything; an Access Manager can do most but cannot grant the
  Access Manager role; a Staff End User cannot grant access at all.
- Who signs is not a CMS role in I&A but the application's signer roles
  (`Enrollment.signers_needed`):
  the provider signs an individual application; an Authorized or Delegated Official of the
  organization, as staff recorded them, signs an organizational one; a reassignment needs
  both. A delegate signs only as a recorded official (an I&A role alone never lets them).
- The provider counts as Authorized Official on their own profiles (they own the company); a
  delegate acts only through the CMS role the provider recorded for them on that profile.
"""

from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum

from clients.models import CMSRole, Profile

from .models import AccessGrant, Signer


class Step(StrEnum):
    APPROVE_CONNECTION = "approve_connection"
    ADD_STAFF = "add_staff"
    ADD_SURROGATE = "add_surrogate"
    SIGN = "sign"
    ANSWER_DEVELOPMENT = "answer_development"
    REGAIN_CONTROL = "regain_control"
    UPLOAD_DOCUMENT = "upload_document"
    REATTEST_CAQH = "reattest_caqh"
    # bandit: a step name, not a secret
    RESET_PASSWORD = "reset_password"  # noqa: S105  # nosec B105


AO, AM, SEU = CMSRole.AUTHORIZED_OFFICIAL, CMSRole.ACCESS_MANAGER, CMSRole.STAFF_END_USER

# How long after "I've done this" the person who may do the step can take it back (a
# mis-tap on a phone); after that, staff are checking and the firm is told instead.
UNDO_WINDOW = timedelta(minutes=10)


@dataclass(frozen=True)
class Party:
    """A person acting on a client's steps: the provider, or one of their delegates."""

    name: str
    is_provider: bool
    roles: dict[int, str] = field(default_factory=dict)  # profile id -> CMS role (delegates)
    delegate_id: int | None = None

    def role_on(self, profile: Profile) -> str | None:
        return AO if self.is_provider else self.roles.get(profile.pk)


def roles_allowed(step: Step, profile: Profile, requested_role: str = "") -> frozenset[str]:
    """The CMS roles that may do `step` on `profile`; empty means the provider only."""
    if step in (Step.APPROVE_CONNECTION, Step.ADD_SURROGATE):
        return frozenset({AO, AM})
    if step == Step.ADD_STAFF:
        return frozenset({AO}) if requested_role == AM else frozenset({AO, AM})
    if step in (Step.ANSWER_DEVELOPMENT, Step.UPLOAD_DOCUMENT, Step.REATTEST_CAQH):
        # Gathering what the contractor asks for, sending a document and re-attesting in
        # CAQH (which lets a practice manager attest) are office work; a signature is asked
        # as a signature round.
        return frozenset({AO, AM})
    return frozenset()  # resetting the provider's own I&A password


def may_do(party: Party, step: Step, profile: Profile, requested_role: str = "") -> bool:
    if party.is_provider:
        return True
    allowed = roles_allowed(step, profile, requested_role)
    return bool(allowed) and party.role_on(profile) in allowed


def refusal(step: Step, profile: Profile, requested_role: str, provider_name: str) -> str:
    """Why a delegate may not do this, and whom to ask, in the words the page shows."""
    if step == Step.ADD_STAFF and requested_role == AM:
        return (
            f"Only an Authorized Official can grant the Access Manager role. Ask {provider_name}."
        )
    if step in (Step.APPROVE_CONNECTION, Step.ADD_SURROGATE, Step.ADD_STAFF):
        return f"A Staff End User cannot grant access. Ask {provider_name}."
    if step == Step.ANSWER_DEVELOPMENT:
        return f"A Staff End User cannot answer the contractor's request. Ask {provider_name}."
    if step in (Step.UPLOAD_DOCUMENT, Step.REATTEST_CAQH):
        return f"Your role on this profile does not cover its credentials. Ask {provider_name}."
    return f"Only the provider can do this with their own I&A account. Ask {provider_name}."


def grant_step(grant: AccessGrant) -> Step:
    """What the provider's side does for this access grant."""
    return {
        AccessGrant.Method.CONNECTION_REQUEST: Step.APPROVE_CONNECTION,
        AccessGrant.Method.ADD_STAFF: Step.ADD_STAFF,
        AccessGrant.Method.ADD_SURROGATE: Step.ADD_SURROGATE,
    }[grant.method]


# --- who signs ------------------------------------------------------------------------


def may_sign(party: Party, signer: Signer) -> bool:
    """Only the signer signs: the provider as themselves (or as an official they are), a
    delegate only as an official recorded as that delegate."""
    if signer.is_provider:
        return party.is_provider
    official = signer.official
    return (
        official is not None
        and official.delegate_id is not None
        and party.delegate_id == official.delegate_id
    )


def signer_refusal(signer: Signer) -> str:
    return f"Only {signer.name} can sign this, as {signer.get_role_display()}."
