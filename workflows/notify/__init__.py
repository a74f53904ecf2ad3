"""What each workflow change tells whom, and when: the cadences are domain rules.

Called by the transitions in `services.py`, inside their transaction; hands ready messages
with due times and idempotency keys to `notifications.outbox`, which stores and delivers
them. Reminders go out at the firm's civil hour in its time zone, never at 3 a.m.

A module a workflow (`grants`, `rounds`, `enrollments`, `developments`, `credentials`,
`bounces`), on what they share (`common`: the civil hours, who is on each side, and
`reminders`, which turns a clock and a cadence into messages). Callers use the names
below: `from . import notify; notify.grant_sent(grant)`.
"""

from .bounces import address_bouncing
from .common import Clock, civil_before, civil_moment, claim_undone, reminders, staff_side
from .credentials import (
    CREDENTIAL_EXPIRY_KINDS,
    CREDENTIAL_REQUEST_KINDS,
    REVALIDATION_ALERT_KINDS,
    credential_on_file,
    credential_received,
    credential_rejected,
    credential_requested,
    credential_stopped,
    expiry_messages,
    revalidation_clock_moved,
)
from .developments import (
    DEVELOPMENT_REMINDER_KINDS,
    DEVELOPMENT_STAFF_KINDS,
    development_claimed,
    development_opened,
    development_waiting_again,
    development_waiting_stopped,
)
from .enrollments import RECONSIDERATION_KINDS, enrollment_outcome, reconsideration_waiting_stopped
from .grants import (
    GRANT_REMINDER_KINDS,
    grant_active,
    grant_claimed,
    grant_firm_not_found,
    grant_sent,
    grant_waiting_again,
    grant_waiting_stopped,
    grants_expired,
    ia_regain_claimed,
)
from .rounds import (
    ROUND_STAFF_KINDS,
    SIGNER_REMINDER_KINDS,
    round_confirmed,
    round_opened,
    round_waiting_again,
    round_waiting_stopped,
    signer_claimed,
    signer_waiting_again,
    signer_waiting_stopped,
)

__all__ = [
    "CREDENTIAL_EXPIRY_KINDS",
    "CREDENTIAL_REQUEST_KINDS",
    "DEVELOPMENT_REMINDER_KINDS",
    "DEVELOPMENT_STAFF_KINDS",
    "GRANT_REMINDER_KINDS",
    "RECONSIDERATION_KINDS",
    "REVALIDATION_ALERT_KINDS",
    "ROUND_STAFF_KINDS",
    "SIGNER_REMINDER_KINDS",
    "Clock",
    "address_bouncing",
    "civil_before",
    "civil_moment",
    "claim_undone",
    "credential_on_file",
    "credential_received",
    "credential_rejected",
    "credential_requested",
    "credential_stopped",
    "development_claimed",
    "development_opened",
    "development_waiting_again",
    "development_waiting_stopped",
    "enrollment_outcome",
    "expiry_messages",
    "grant_active",
    "grant_claimed",
    "grant_firm_not_found",
    "grant_sent",
    "grant_waiting_again",
    "grant_waiting_stopped",
    "grants_expired",
    "ia_regain_claimed",
    "reconsideration_waiting_stopped",
    "reminders",
    "revalidation_clock_moved",
    "round_confirmed",
    "round_opened",
    "round_waiting_again",
    "round_waiting_stopped",
    "signer_claimed",
    "signer_waiting_again",
    "signer_waiting_stopped",
    "staff_side",
]
