"""The who-may-act matrix from the provider guide, for every role and every step."""

import pytest

from clients.models import Profile
from workflows.rules import Party, Step, may_do

pytestmark = pytest.mark.django_db

AO, AM, SEU = "authorized_official", "access_manager", "staff_end_user"

# (step, requested role, profile kind) -> who may: provider, AO, AM, SEU, no role
MATRIX = [
    (Step.APPROVE_CONNECTION, "", "individual", (True, True, True, False, False)),
    (Step.APPROVE_CONNECTION, "", "organizational", (True, True, True, False, False)),
    (Step.ADD_STAFF, AM, "individual", (True, True, False, False, False)),
    (Step.ADD_STAFF, SEU, "individual", (True, True, True, False, False)),
    (Step.ADD_SURROGATE, "", "organizational", (True, True, True, False, False)),
    # Signing is not a matter of I&A roles: each round names its signers
    # (tests/workflows/test_signers.py).
    (Step.ANSWER_DEVELOPMENT, "", "individual", (True, True, True, False, False)),
    (Step.ANSWER_DEVELOPMENT, "", "organizational", (True, True, True, False, False)),
    (Step.REGAIN_CONTROL, "", "individual", (True, False, False, False, False)),
    # Regaining the I&A login is the person's own: the provider's alone (one per person).
    (Step.RESET_PASSWORD, "", "individual", (True, False, False, False, False)),
    (Step.RESET_PASSWORD, "", "organizational", (True, False, False, False, False)),
]


@pytest.mark.parametrize(("step", "requested_role", "kind", "expected"), MATRIX)
def test_who_may_do_each_step(rivera, step, requested_role, kind, expected):
    profile = rivera.profiles.get(kind=kind)
    parties = [
        Party(name="provider", is_provider=True),
        Party(name="ao", is_provider=False, roles={profile.pk: AO}),
        Party(name="am", is_provider=False, roles={profile.pk: AM}),
        Party(name="seu", is_provider=False, roles={profile.pk: SEU}),
        Party(name="none", is_provider=False, roles={}),
    ]
    got = tuple(may_do(party, step, profile, requested_role) for party in parties)
    assert got == expected


def test_a_role_on_one_profile_does_not_carry_to_the_other(rivera):
    individual = rivera.profiles.get(kind=Profile.Kind.INDIVIDUAL)
    organizational = rivera.profiles.get(kind=Profile.Kind.ORGANIZATIONAL)
    manager = Party(name="am", is_provider=False, roles={individual.pk: AM})
    assert may_do(manager, Step.APPROVE_CONNECTION, individual)
    assert not may_do(manager, Step.APPROVE_CONNECTION, organizational)
