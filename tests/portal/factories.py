import factory
from allauth.mfa.totp.internal.auth import TOTP
from django.utils import timezone

from portal.models import Firm, Invitation, Membership, Role, User

TOTP_SECRET = "JBSWY3DPEHPK3PXP"
PASSWORD = "correct-horse-battery-9"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"person{n}@example.test")
    full_name = factory.Faker("name")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def totp(self, create, extracted, **kwargs):
        """`UserFactory(totp=True)` enrols the known test secret, as a staff member would."""
        self.save()
        if create and extracted:
            TOTP.activate(self, TOTP_SECRET)


class FirmFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Firm

    name = factory.Sequence(lambda n: f"Firm {n} Credentialing")
    slug = factory.Sequence(lambda n: f"firm-{n}")
    time_zone = "America/Chicago"


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory, totp=True)
    firm = factory.SubFactory(FirmFactory)
    role = Role.STAFF


class InvitationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Invitation

    firm = factory.SubFactory(FirmFactory)
    email = factory.Sequence(lambda n: f"invitee{n}@example.test")
    role = Role.STAFF
    nonce = factory.Sequence(lambda n: f"nonce-{n}")
    expires_at = factory.LazyFunction(lambda: timezone.now() + timezone.timedelta(days=7))
