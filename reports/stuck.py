"""What "stuck" means: the one place for the rules. Each is a number of days, a firm setting
(`Firm.stuck_thresholds` overrides these defaults), and comes with its reason and holder.

Defaults, and why:
- access_pending 14: half the 30-day life of a connection request; staff alerts start at 21.
- request_near_deadline 5: the last two reminders go out on days 25 and 28.
- verify 2: "the provider says done" should be checked within two working days.
- signature 10: half of the 20 days CMS allows, for every signature method, before it rejects
  an application whose signature has not arrived; past the deadline is stuck at once.
- preparing 21, submitted 45, in_development 20: the firm's own step, the contractor's usual
  processing time, and a development request's 30-day answer window less ten days.
- development_due 10: a development response due within ten days (a third of the 30 days
  contractors give) is urgent; a missed one gets the application rejected.
- A rejected application not yet resubmitted is always listed (like an expired request not
  sent again): the firm's move, and the provider is without an enrollment meanwhile.
- A denial's open reconsideration window is always listed: it is a clock that, once run out,
  leaves only a new application.
- idle_client 30: a client with open work and no activity for a month.
- credential_expiring 30: a credential on file that expires within a month (or has expired:
  always listed, first) is about to cost the provider their contracts; the provider's own
  reminders start at 90 days, so by 30 the firm should be chasing.
- document_due 3: a document asked for and due within three days (or overdue).
- revalidation_due 60: a revalidation due within two months: MACs mail their notice 3-4
  months ahead, and a missed date means a stay of enrollment (no billing), then
  deactivation.
A document the provider sent waits for review like a "provider says done" (the verify rule).
"""

from dataclasses import dataclass, fields

from portal.models import Firm

DEFAULTS = {
    "access_pending": 14,
    "request_near_deadline": 5,
    "verify": 2,
    "signature": 10,
    "preparing": 21,
    "submitted": 45,
    "in_development": 20,
    "development_due": 10,
    "idle_client": 30,
    "credential_expiring": 30,
    "document_due": 3,
    "revalidation_due": 60,
}

RULE_LABELS = {
    "access_pending": "Access request waiting for the provider",
    "request_near_deadline": "Request this close to its 30-day deadline",
    "verify": "Provider says done, not verified",
    "signature": "Signature waiting for the provider",
    "preparing": "Enrollment being prepared",
    "submitted": "Enrollment with the contractor",
    "in_development": "Enrollment in development",
    "development_due": "Development response due within",
    "idle_client": "Client with open work and no activity",
    "credential_expiring": "Credential expiring within",
    "document_due": "Requested document due within",
    "revalidation_due": "Revalidation due within",
}

STAGES = {
    "access_pending": "Access: waiting for the provider",
    "access_expired": "Access: expired or rejected",
    "verify": "To verify",
    "signature": "Signature: waiting for the provider",
    "paper": "Signature: statement in the mail to the contractor",
    "preparing": "Enrollment: preparing",
    "submitted": "Enrollment: with the contractor",
    "in_development": "Enrollment: in development",
    "development": "Development request: response due",
    "reconsideration": "Denied: reconsideration window open",
    "rejected": "Enrollment: rejected, not resubmitted",
    "idle_client": "Client: no activity",
    "credential": "Credential: expiring or expired",
    "document": "Document: requested from the provider",
    "document_review": "Document: to review",
    "revalidation": "Revalidation: due at CMS",
}

REASONS = {
    "near_deadline": "Request expires soon",
    "waiting_long": "Waiting longer than usual",
    "expired_not_resent": "Expired or rejected, not sent again",
    "unverified": "Provider says done; not verified",
    "past_deadline": "Past its signature deadline",
    "slow_stage": "Longer in this stage than the firm allows",
    "no_activity": "No activity",
    "response_due": "Development response due soon",
    "past_response_date": "Past its development response date",
    "reconsideration_window": "Reconsideration must be requested by its deadline",
    "rejected_not_resubmitted": "Rejected; the corrected resubmission is not made yet",
    "credential_expired": "Expired",
    "credential_expires_soon": "Expires soon",
    "document_overdue": "Past its due date",
    "document_due_soon": "Due soon",
    "document_unreviewed": "Sent by the provider; not reviewed",
    "revalidation_due": "Revalidation due at CMS",
}

AGE_BUCKETS = [
    ("0-7", 0, 7),
    ("8-14", 8, 14),
    ("15-30", 15, 30),
    ("31-60", 31, 60),
    ("60+", 61, None),
]


@dataclass(frozen=True)
class StuckRules:
    access_pending: int
    request_near_deadline: int
    verify: int
    signature: int
    preparing: int
    submitted: int
    in_development: int
    development_due: int
    idle_client: int
    credential_expiring: int
    document_due: int
    revalidation_due: int

    @classmethod
    def for_firm(cls, firm: Firm) -> "StuckRules":
        overrides = {
            name: int(value)
            for name, value in (firm.stuck_thresholds or {}).items()
            if name in DEFAULTS and str(value).isdigit()
        }
        return cls(**(DEFAULTS | overrides))

    def as_dict(self) -> dict[str, int]:
        return {field.name: getattr(self, field.name) for field in fields(self)}

    def labelled(self) -> list[tuple[str, int]]:
        return [(RULE_LABELS[field.name], getattr(self, field.name)) for field in fields(self)]
