"""allauth's own emails (sign-in codes, password resets, address confirmations...) through
the outbox, as the email of the person's firm (`portal.signals.account_email_requested`).

allauth renders nothing here: the outbox renders the `emails/account` triplet, which takes
the subject and text from allauth's templates (`templates/account/email/` overrides the
frame), so these emails are stored, delivered, retried and never sent twice like every
other. A sign-in code is due at once and delivery is requested the moment its row commits.
"""

import uuid

from django.db import transaction
from django.dispatch import receiver
from django.utils import timezone

from portal.signals import account_email_requested

from .models import Notification
from .outbox import Message, schedule

KIND_PREFIX = "account."


@receiver(account_email_requested, dispatch_uid="notifications.account_email")
def schedule_account_email(
    sender, *, firm, user, email: str, template_prefix: str, context: dict, **kwargs
) -> bool:
    name = template_prefix.rsplit("/", 1)[-1]
    with transaction.atomic():  # delivery is requested when this commits: at once
        schedule(
            [
                Message(
                    firm=firm,
                    kind=(KIND_PREFIX + name)[:48],
                    subject_type="account",
                    subject_id=str(user.public_id),
                    # Every request is its own email (a new code each time).
                    step=uuid.uuid4().hex,
                    due_at=timezone.now(),
                    template="account",
                    to_email=email,
                    recipient=user,
                    essential=True,  # never behind a preference: it is how they log in
                    context={
                        **context,
                        "subject_template": f"{template_prefix}_subject.txt",
                        "body_template": f"{template_prefix}_message.txt",
                    },
                    channels=(Notification.Channel.EMAIL,),
                )
            ]
        )
    return True
