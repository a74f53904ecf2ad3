"""Sessions for the load test: logged-in staff, admins and providers of the largest firm."""

import json
from importlib import import_module
from pathlib import Path

from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import TOTP
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.core.management.base import BaseCommand
from django.db.models import Count

from portal.models import Firm, Membership, Role

SESSIONS_PER_ROLE = 10


def session_for(user) -> str:
    engine = import_module(settings.SESSION_ENGINE)
    session = engine.SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.save()
    return session.session_key


class Command(BaseCommand):
    help = "Write var/bench/sessions.json: session cookies for locust's simulated people."

    def handle(self, *args, **options):
        firm = Firm.objects.annotate(n=Count("clients")).order_by("-n", "pk").first()
        people = {}
        for role in (Role.STAFF, Role.ADMIN, Role.CLIENT):
            members = (
                Membership.objects.filter(firm=firm, role=role, is_active=True)
                .select_related("user")
                .order_by("pk")[:SESSIONS_PER_ROLE]
            )
            people[role] = []
            for membership in members:
                user = membership.user
                if role != Role.CLIENT and not Authenticator.objects.filter(user=user).exists():
                    TOTP.activate(user, "JBSWY3DPEHPK3PXP")
                people[role].append(session_for(user))
        out = Path(settings.VAR_DIR) / "bench" / "sessions.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"cookie": settings.SESSION_COOKIE_NAME, "sessions": people}))
        counts = {role: len(keys) for role, keys in people.items()}
        self.stdout.write(f"{firm.name}: sessions {counts} written to {out}")
