"""One tap from the email to the to-do (issue 13): every email to a provider or delegate
carries a link that signs its recipient in and lands on the page it is about.

- Single use: the first "Open" uses it; after that, or 24 hours after the email went out,
  it is refused with a page that offers a fresh one by email (to the same recipient only).
- Bound to its recipient: someone else signed in on that browser is asked to log out first.
- A second factor still counts: the link stands for the email code allauth would send, so a
  person with an authenticator app is asked for it after the link, by allauth's own stage.
- Opening the link shows one button ("Open my to-do list") and the POST signs in: mail
  scanners that follow links do not use it up.
"""

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.urls import reverse

VALID_FOR = timedelta(hours=24)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_link(message, key: str):
    """(the URL for the email, the unsaved SignInLink row) for this message's email."""
    from .models import SignInLink

    token = secrets.token_urlsafe(32)
    row = SignInLink(
        token_hash=token_hash(token),
        idempotency_key=key,
        user=message.recipient,
        firm=message.firm,
        path=message.link_path,
    )
    return settings.SITE_URL + reverse("sign_in_link", args=[token]), row
