"""The moves staff make on a workflow step from the client page, and when each is allowed.

A move names the state it leads to; it is allowed when the workflow's TRANSITIONS lead there
from the step's state and its own condition, if it has one, holds. One place for the rule:
the case file offers exactly the moves `allowed` returns, and the services refuse the others
with `ensure` (then `_move` checks the transition itself). The keys are the actions of the
step's URL (`grant_action`, `round_action`, `development_action`).
"""

from collections.abc import Callable
from dataclasses import dataclass

from .errors import TransitionError
from .models import AccessGrant, DevelopmentRequest, SignatureRound, Signer


@dataclass(frozen=True)
class Move:
    to: str | None  # None: the move is on the step's parts (a round's signers), not the step
    condition: Callable[[object], bool] | None = None
    refusal: str = ""  # why, when the condition does not hold

    def allows(self, step) -> bool:
        if self.to is not None and self.to not in type(step).TRANSITIONS[step.State(step.state)]:
            return False
        return self.condition is None or self.condition(step)


def allowed(moves: dict[str, Move], step) -> frozenset[str]:
    """The actions of `moves` that `step` allows now."""
    return frozenset(action for action, move in moves.items() if move.allows(step))


def ensure(move: Move, step) -> None:
    """Refuse a move whose own condition does not hold (the transition is `_move`'s check)."""
    if move.condition is not None and not move.condition(step):
        raise TransitionError(move.refusal)


def _claimed(step) -> bool:
    return step.state in (
        AccessGrant.State.PROVIDER_SAYS_DONE,
        DevelopmentRequest.State.PROVIDER_SAYS_DONE,
    )


SENT_BACK_ONLY_IF_CLAIMED = "Only a step the provider reported done can be sent back."
MAILED_CLOSES_BY_RECEIPT = (
    "A statement mailed to the contractor is closed by recording it received."
)


def _signed_electronically_or_uploaded(signature_round: SignatureRound) -> bool:
    return not signature_round.is_mailed_method


def _someone_says_signed(signature_round: SignatureRound) -> bool:
    """A signer reported signing, and the round still waits for signatures: staff may send
    it back. Reads `signers.all()` (prefetched by the case file)."""
    return signature_round.state in (
        SignatureRound.State.AWAITING_SIGNATURE,
        SignatureRound.State.PROVIDER_SAYS_SIGNED,
    ) and any(s.state == Signer.State.SAYS_SIGNED for s in signature_round.signers.all())


GRANT_MOVES = {
    "mark-active": Move(AccessGrant.State.ACTIVE),
    "not-yet": Move(
        AccessGrant.State.AWAITING_PROVIDER, _claimed, refusal=SENT_BACK_ONLY_IF_CLAIMED
    ),
    "record-expired": Move(AccessGrant.State.EXPIRED),
    "record-rejected": Move(AccessGrant.State.REJECTED),
    "cancel": Move(AccessGrant.State.CANCELLED),
}

ROUND_MOVES = {
    "confirm": Move(
        SignatureRound.State.CONFIRMED,
        _signed_electronically_or_uploaded,
        refusal=MAILED_CLOSES_BY_RECEIPT,
    ),
    "not-yet": Move(
        None,
        _someone_says_signed,
        refusal="Only a round the provider reported signed can be sent back.",
    ),
    "mailed": Move(
        SignatureRound.State.MAILED,
        lambda signature_round: signature_round.is_mailed_method,
        refusal="Only a statement signed for the contractor by mail is mailed.",
    ),
    "received": Move(SignatureRound.State.RECEIVED),
    "cancel": Move(SignatureRound.State.CANCELLED),
}

DEVELOPMENT_MOVES = {
    "answered": Move(DevelopmentRequest.State.ANSWERED),
    "not-yet": Move(DevelopmentRequest.State.OPEN, _claimed, refusal=SENT_BACK_ONLY_IF_CLAIMED),
    "cancel": Move(DevelopmentRequest.State.CANCELLED),
}

# One signer's signature, seen in PECOS (a round with several signers); the round's own
# "confirm" confirms them all.
SIGNER_CONFIRM = Move(
    Signer.State.SIGNED,
    lambda signer: _signed_electronically_or_uploaded(signer.signature_round),
    refusal=MAILED_CLOSES_BY_RECEIPT,
)
