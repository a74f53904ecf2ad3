"""Writing the audit trail. Every change in credportal records one event through `record`."""

import contextvars
from typing import Any

from allauth.account.adapter import get_adapter
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.db import models

from .models import AuditEvent, Firm, User

# The IP of the request being served, set by MembershipMiddleware; None for Celery and commands.
current_ip: contextvars.ContextVar[str | None] = contextvars.ContextVar("current_ip", default=None)


def client_ip(request) -> str | None:
    """The client's address, by the same rule as allauth's rate limits: REMOTE_ADDR, or
    behind our reverse proxy the entry of X-Forwarded-For (or TRUSTED_CLIENT_IP_HEADER)
    that the trusted proxy wrote (TRUSTED_PROXY_COUNT, docs/deploy.md). gunicorn's
    --forwarded-allow-ips does not change REMOTE_ADDR; it only trusts the scheme header."""
    try:
        return get_adapter(request).get_client_ip(request)
    except (PermissionDenied, ImproperlyConfigured):  # no address, or a header too short
        return request.META.get("REMOTE_ADDR") or None


def record(
    verb: str,
    *,
    actor: User | None,
    firm: Firm | None,
    target: models.Model | None = None,
    target_label: str = "",
    client_uuid=None,
    data: dict[str, Any] | None = None,
    ip: str | None = None,
) -> AuditEvent:
    target_id = ""
    if target is not None:
        target_id = str(getattr(target, "public_id", None) or target.pk)
    return AuditEvent.objects.create(
        verb=verb,
        actor=actor if actor is not None and actor.is_authenticated else None,
        firm=firm,
        target_type=target._meta.label_lower if target is not None else "",
        target_id=target_id,
        target_label=target_label[:255],
        client_uuid=client_uuid,
        data=data or {},
        ip=ip or current_ip.get(),
    )


# Reads of a client's record (HIPAA audit controls): recorded against the client as target,
# without `client_uuid`, so they fill the access log and stay off the timeline of changes.
READ_VERBS = {
    "client.viewed": "Opened the client page",
    "client.status_viewed": "Opened the status report",
    "client.access_log_viewed": "Opened this access log",
    "credential.viewed": "Opened a credential",
    "credential.file_downloaded": "Downloaded a credential's document",
}


def record_read(
    verb: str, request, client: models.Model, *, part: str = "", data: dict | None = None
) -> AuditEvent:
    """Who opened which client's record (or `part` of it: "State license TX"), when and from
    where."""
    return record(
        verb,
        actor=request.user,
        firm=request.firm,
        target=client,
        target_label=str(client),
        data={"part": part, **(data or {})} if part else data,
    )
