"""Provider to-dos, derived from open workflow steps (never stored twice).

A to-do is what only the provider's side can do now: approve a pending connection, add the
firm as staff or surrogate, sign round N, regain control of the I&A account, reset its
password. Each carries the profile it is for, the exact steps, its deadline and who may do it.
"""

from dataclasses import dataclass, field
from datetime import datetime

from django.utils import timezone

from clients.models import Client, CMSRole, IAController, Profile

from . import steps
from .casefile import ClientFile, ProfileFile
from .deadlines import days_left, renewal_horizon
from .models import (
    AccessGrant,
    Credential,
    DevelopmentRequest,
    SignatureRound,
    Signer,
)
from .rules import (
    UNDO_WINDOW,
    Party,
    Step,
    grant_step,
    may_do,
    may_sign,
    refusal,
    roles_allowed,
    signer_refusal,
)


@dataclass
class Todo:
    step: Step
    title: str
    profile: Profile
    steps: list[str]
    who_may: str
    can_act: bool
    refusal: str = ""
    deadline: datetime | None = None
    days_left: int | None = None
    reason: str = ""
    grant: AccessGrant | None = None
    signature_round: SignatureRound | None = None
    signer: Signer | None = None
    development: DevelopmentRequest | None = None
    credential: Credential | None = None
    person_step: str = ""  # a step about the provider's own I&A login ("ia-regain"...)
    notes: list[str] = field(default_factory=list)  # "good to know", under the steps
    undo_until: datetime | None = None  # "I've done this" may be taken back until then
    since: datetime | None = None  # done on the provider's side: the firm checks it since
    is_paper: bool = False
    claimed: bool = False  # "I've done this" was pressed; staff are verifying

    @property
    def object_public_id(self):
        if self.person_step:
            return self.profile.client.public_id
        obj = self.grant or self.signer or self.development or self.credential
        return obj.public_id if obj else None

    @property
    def done_kind(self) -> str:
        """The kind of step "I've done this" reports (the `todo_done` route's)."""
        if self.grant:
            return "grant"
        if self.signer:
            return "signer"
        if self.development:
            return "development"
        if self.credential:
            return "credential"
        return self.person_step

    @property
    def takes_upload(self) -> bool:
        """Done by uploading the document (not by "I've done this")."""
        return self.credential is not None and self.credential.kind.needs_file


def party_for(user, client: Client) -> Party | None:
    """How `user` stands towards `client`'s to-dos: as the provider, a delegate, or not at
    all (reads `client.delegates.all()`, which the case file prefetches)."""
    if client.user_id == user.pk:
        return Party(name=client.display_name, is_provider=True)
    for delegate in client.delegates.all():
        if delegate.user_id == user.pk and delegate.is_active:
            return Party(
                name=delegate.name,
                is_provider=False,
                roles={role.profile_id: role.cms_role for role in delegate.roles.all()},
                delegate_id=delegate.pk,
            )
    return None


def _sign_title(signature_round: SignatureRound, signer: Signer, profile: Profile) -> str:
    number = signature_round.number
    if signer.role == Signer.Role.PROVIDER:
        return f"Sign round {number} of your application"
    organization = signer.official.organization if signer.official else profile.organization
    return f"Sign round {number} as {signer.get_role_display()} of {organization.legal_name}"


def _who_may(step: Step, profile: Profile, requested_role: str, case: ClientFile) -> str:
    allowed = roles_allowed(step, profile, requested_role)
    names = [case.client.display_name]
    for delegate in case.delegates:
        role = next((r.cms_role for r in delegate.roles.all() if r.profile_id == profile.pk), None)
        if role in allowed:
            names.append(f"{delegate.name} ({CMSRole(role).label})")
    return ", or ".join(names)


def todos_for(
    case: ClientFile, party: Party | None, *, now: datetime | None = None, about: bool = False
) -> list[Todo]:
    """The provider-side to-dos of a client's case file, as `party` sees them (None: read-only, for
    staff or the status report). `about`: titled about the provider ("Sign round 2 of
    Ana's application"), as staff pages speak; a delegate's always are."""
    now = now or timezone.now()
    client = case.client
    firm = client.firm
    todos: list[Todo] = []

    def make(step, profile, step_list, *, requested_role="", **extra) -> Todo:
        can = party is not None and may_do(party, step, profile, requested_role)
        return Todo(
            step=step,
            title=steps.TITLES[step],
            profile=profile,
            steps=step_list,
            who_may=_who_may(step, profile, requested_role, case),
            can_act=can,
            refusal=""
            if can or party is None
            else refusal(step, profile, requested_role, client.display_name),
            **extra,
        )

    # The provider's own I&A login: one to-do per person, whatever their profiles.
    individual = case.individual.profile
    if client.ia_controller in (IAController.SOMEONE_ELSE, IAController.REGAIN_CLAIMED):
        todos.append(
            make(
                Step.REGAIN_CONTROL,
                individual,
                steps.regain_control(who=client.ia_controller_note),
                person_step="ia-regain",
                claimed=client.ia_controller == IAController.REGAIN_CLAIMED,
            )
        )
    if client.password_reset_likely:
        todos.append(
            make(Step.RESET_PASSWORD, individual, steps.reset_password(), person_step="ia-password")
        )
    for profile_file in case.profiles:
        profile = profile_file.profile
        for grant in profile_file.pending_grants:
            step = grant_step(grant)
            step_list = steps.for_grant(grant, firm=firm, assigned_staff=client.assigned_staff)
            todos.append(
                make(
                    step,
                    profile,
                    step_list,
                    requested_role=grant.requested_role,
                    deadline=grant.deadline,
                    days_left=days_left(firm, grant.deadline, now) if grant.deadline else None,
                    grant=grant,
                    notes=steps.access_facts(firm_name=firm.name),
                    claimed=grant.state == AccessGrant.State.PROVIDER_SAYS_DONE,
                )
            )
        for enrollment_file in profile_file.open_enrollments:
            for round_step in enrollment_file.open_rounds:
                signature_round = round_step.signature_round
                for signer in signature_round.signers.all():
                    if signer.has_signed:
                        continue
                    can = party is not None and may_sign(party, signer)
                    todos.append(
                        Todo(
                            step=Step.SIGN,
                            title=_sign_title(signature_round, signer, profile),
                            profile=profile,
                            steps=steps.sign_for(
                                signature_round.method, pecos_email=signer.pecos_email
                            ),
                            who_may=f"{signer.name} ({signer.get_role_display()})",
                            can_act=can,
                            refusal="" if can or party is None else signer_refusal(signer),
                            deadline=signature_round.deadline,
                            days_left=days_left(firm, signature_round.deadline, now),
                            reason=signature_round.reason if signature_round.is_revision else "",
                            signature_round=signature_round,
                            signer=signer,
                            notes=steps.SIGNING_FACTS,
                            is_paper=signature_round.is_paper,
                            claimed=signer.state == Signer.State.SAYS_SIGNED,
                        )
                    )
            for development_step in enrollment_file.open_developments:
                request = development_step.request
                if not request.provider_must_act:
                    continue
                todos.append(
                    make(
                        Step.ANSWER_DEVELOPMENT,
                        profile,
                        steps.answer_development(
                            asked=request.asked,
                            firm_name=firm.name,
                            due=f"{request.deadline.astimezone(firm.zone):%A, %B %-d}",
                        ),
                        deadline=request.deadline,
                        days_left=days_left(firm, request.deadline, now),
                        development=request,
                        claimed=request.state == DevelopmentRequest.State.PROVIDER_SAYS_DONE,
                    )
                )
    for profile_file in case.profiles:
        todos += _credential_todos(
            client, profile_file, make, now, for_provider=party is None or party.is_provider
        )
    for todo in todos:
        claim = todo.grant or todo.signer or todo.development
        if todo.claimed and (claim or todo.credential) is not None:
            todo.since = (claim or todo.credential).state_entered_at
        if todo.claimed and todo.can_act and claim is not None:
            until = claim.state_entered_at + UNDO_WINDOW
            todo.undo_until = until if until > now else None
    if about or (party is not None and not party.is_provider):
        for todo in todos:  # a delegate's list names whose it is
            todo.title = spoken_about(todo.title, client.first_name)
    todos.sort(key=lambda todo: (todo.claimed, todo.deadline is None, todo.deadline or now))
    return todos


def spoken_about(title: str, first_name: str) -> str:
    """A to-do's title for someone acting for the provider: "Sign round 2 of Ana's
    application", "Renew: upload Ana's state license (TX)". The steps keep "your" where the
    delegate does it themselves (their own I&A login)."""
    return title.replace("your ", f"{first_name}'s ")


def _credential_todos(
    client: Client, profile_file: ProfileFile, make, now: datetime, *, for_provider: bool = True
) -> list[Todo]:
    """A document asked for (or refused, with why), a credential to renew before it expires,
    a CAQH re-attestation due; one being reviewed waits with the credentialer."""
    firm = client.firm
    horizon = renewal_horizon(firm)
    todos = []
    profile = profile_file.profile
    for credential in profile_file.credentials:
        renewal = credential.state == Credential.State.ACCEPTED
        if renewal and (
            credential.deadline is None or days_left(firm, credential.deadline, now) > horizon
        ):
            continue
        what = credential.what
        is_caqh = not credential.kind.needs_file
        due = credential.deadline
        if is_caqh:
            step = Step.REATTEST_CAQH
            step_list = steps.reattest_caqh(
                caqh_id=credential.number,
                due=f"{due.astimezone(firm.zone):%A, %B %-d}" if due else "",
            )
            title = steps.TITLES[step]
        else:
            step = Step.UPLOAD_DOCUMENT
            step_list = steps.upload_document(
                what=what,
                note="" if renewal else credential.request_note,
                reason=credential.rejection_reason
                if credential.state == Credential.State.REJECTED
                else "",
                renewal=renewal,
                expired=renewal and due is not None and due < now,
                whose="your" if for_provider else f"{client.first_name}'s",
            )
            title = f"{'Renew: upload' if renewal else 'Upload'} your {what}"
        todo = make(
            step,
            profile,
            step_list,
            deadline=due,
            days_left=days_left(firm, due, now) if due else None,
            credential=credential,
            claimed=credential.state == Credential.State.RECEIVED,
        )
        todo.title = title
        todos.append(todo)
    return todos
