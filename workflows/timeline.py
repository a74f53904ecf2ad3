"""The client's timeline in sentences (issue 13: a client page that reads like a file):
"Sam Staff sent Connection request from the firm (Rivera Therapy PLLC)", grouped by day in
the firm's time zone. One sentence per audit verb the services record; a test fails when a
service records a verb with none."""

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime

from portal.models import AuditEvent

from .casefile import ProfileFile
from .models import (
    AccessGrant,
    Credential,
    DevelopmentRequest,
    Enrollment,
    SignatureRound,
    Signer,
)

# The state labels of each audited model, to say "submitted" rather than "submitted".
STATE_LABELS = {
    "workflows.accessgrant": dict(AccessGrant.State.choices),
    "workflows.enrollment": dict(Enrollment.State.choices),
    "workflows.signatureround": dict(SignatureRound.State.choices),
    "workflows.signer": dict(Signer.State.choices),
    "workflows.developmentrequest": dict(DevelopmentRequest.State.choices),
    "workflows.credential": dict(Credential.State.choices),
}

# {actor}: who did it; {target}: what it was about, as the event named it; {to}: the state
# it moved to; {on}: the day it happened at CMS, when staff gave one.
SENTENCES = {
    "client.created": "{actor} added the client",
    "client.updated": "{actor} updated the client's details",
    "client.ia_updated": "{actor} recorded who controls the provider's I&A login",
    "client.ia_regain_claimed": "{actor} said the I&A login is the provider's again",
    # bandit: a sentence, not a secret
    "client.ia_password_reset": "{actor} reset the I&A password",  # nosec B105
    "client.status_sent": "{actor} emailed the status report to the provider",
    "organization.added": "{actor} added {target}",
    "official.saved": "{actor} recorded {target}, who signs for the organization",
    "official.removed": "{actor} removed {target} from those who sign",
    "delegate.saved": "{actor} saved {target} as someone who acts for the provider",
    "delegate.removed": "{actor} removed {target} from those who act for the provider",
    "portal.invited": "{actor} invited {target} to the portal",
    "portal.linked": "{target} joined the portal",
    "caseload.released": "{actor} released the caseload of {target}",
    "grant.prepared": "{actor} prepared {target}",
    "grant.sent": "{actor} sent {target}{on}",
    "grant.provider_says_done": "{actor} said {target} is done",
    "grant.not_yet_done": "{actor} could not see the access yet: back to the provider",
    "grant.active": "{actor} confirmed the access is active ({target})",
    "grant.expired": "{target} expired without approval",
    "grant.rejected": "{actor} recorded {target} as rejected",
    "grant.cancelled": "{actor} cancelled {target}",
    "grant.firm_not_found": "{actor} could not find the firm in I&A ({target})",
    "grant.claim_undone": "{actor} took back “I've done this” ({target})",
    "enrollment.created": "{actor} started {target}",
    "enrollment.state_changed": "{target} is now {to}",
    "enrollment.updated": "{actor} updated {target}",
    "enrollment.outcome": "{actor} recorded {target} as {to}{on}",
    "enrollment.reconsideration_filed": "{actor} filed the reconsideration of {target}{on}",
    "enrollment.reconsideration_declined": "{actor} recorded no reconsideration for {target}",
    "enrollment.reconsideration_lapsed": "The reconsideration window of {target} closed",
    "enrollment.reconsideration_upheld": "The contractor upheld the denial of {target}",
    "round.opened": "{actor} asked for {target}{on}",
    "round.provider_says_signed": "Every signer says {target} is signed",
    "round.mailed": "{target}: the signed statement is in the mail to the contractor",
    "round.received": "{actor} recorded {target} received by the contractor",
    "round.confirmed": "{actor} confirmed {target}",
    "round.not_yet_signed": "{actor} could not see the signature yet ({target})",
    "round.cancelled": "{actor} cancelled {target}",
    "round.claim_undone": "{actor} took back “I've signed” ({target})",
    "signer.says_signed": "{target} says they signed",
    "signer.signed": "{actor} confirmed the signature of {target}",
    "signer.not_yet_signed": "{actor} could not see the signature of {target} yet",
    "signer.claim_undone": "{actor} took back “I've signed” ({target})",
    "development.opened": "{actor} recorded {target} from the contractor{on}",
    "development.provider_says_done": "{actor} said {target} is answered",
    "development.not_yet_done": "{actor} sent {target} back to the provider",
    "development.answered": "{actor} sent the response to {target}{on}",
    "development.cancelled": "{actor} cancelled {target}",
    "development.claim_undone": "{actor} took back “I've done this” ({target})",
    "enrollment.revalidation_due": "{actor} recorded the revalidation due date of {target}",
    # A firm-wide import (no client of its own): on no client's timeline, named for the test.
    "revalidations.imported": "{actor} imported CMS's revalidation due dates",
    "credential.added": "{actor} recorded {target} on file",
    "credential.requested": "{actor} asked the provider for {target}",
    "credential.uploaded": "{actor} sent {target}",
    "credential.provider_says_done": "{actor} said {target} is done",
    "credential.accepted": "{actor} accepted {target}",
    "credential.rejected": "{actor} rejected {target}",
    "credential.cancelled": "{actor} marked {target} no longer needed",
    # The firm's catalogue (on no client's timeline; named for the firm's audit log).
    "credential_kind.added": "{actor} added {target} to the credential catalogue",
    "credential_kind.activated": "{actor} put {target} back in the credential catalogue",
    "credential_kind.deactivated": "{actor} took {target} out of the credential catalogue",
}


@dataclass
class Entry:
    at: datetime
    sentence: str
    reason: str


class _Blank(dict):
    def __missing__(self, key):
        return ""


def sentence(event: AuditEvent) -> str:
    data = event.data or {}
    to = data.get("to", "")
    labels = STATE_LABELS.get(event.target_type, {})
    on = data.get("cms_date") or data.get("decided_on") or ""
    if on:
        on = f" (at CMS on {date.fromisoformat(on):%b %-d, %Y})"
    template = SENTENCES.get(event.verb)
    if template is None:  # a verb with no sentence yet: still readable
        return f"{event.actor_label}: {event.verb.replace('.', ' ').replace('_', ' ')}"
    return template.format_map(
        _Blank(
            actor=event.actor_label,
            target=event.target_label or "the client",
            to=str(labels.get(to, to)).lower(),
            on=on,
        )
    )


def by_day(events: list[AuditEvent], zone) -> list[tuple[date, list[Entry]]]:
    """The events as sentences, newest day first, in the firm's time zone."""
    days: dict[date, list[Entry]] = defaultdict(list)
    for event in events:
        at = event.created_at.astimezone(zone)
        days[at.date()].append(
            Entry(at=at, sentence=sentence(event), reason=(event.data or {}).get("reason", ""))
        )
    return sorted(days.items(), key=lambda item: item[0], reverse=True)


def _target_id(obj) -> str:
    return str(getattr(obj, "public_id", None) or obj.pk)  # as portal.audit stores it


def profile_target_ids(profile_file: ProfileFile) -> list[str]:
    """Every audit target of one profile, from its case file (loaded with history): the
    profile, its organization and officials, grants, enrollments with their rounds,
    signers and development requests, and credentials (the timeline's filter by profile)."""
    profile = profile_file.profile
    targets = [
        profile,
        *(step.grant for step in profile_file.grants),
        *profile_file.credentials,
        *profile_file.officials,
    ]
    if profile.organization:
        targets.append(profile.organization)
    for enrollment_file in profile_file.enrollments:
        targets += [enrollment_file.enrollment, *(d.request for d in enrollment_file.developments)]
        for round_step in enrollment_file.rounds:
            targets += [round_step.signature_round, *(s.signer for s in round_step.signers)]
    return [_target_id(target) for target in targets]
