from django.db.models import QuerySet
from django.utils import timezone

from .models import Notification


def inbox_for(user) -> QuerySet:
    """A person's in-app notifications that are due (future reminders are not shown yet)."""
    return Notification.objects.filter(
        recipient=user,
        channel=Notification.Channel.IN_APP,
        due_at__lte=timezone.now(),
        state__in=[Notification.State.SCHEDULED, Notification.State.SENT],
    ).order_by("-due_at", "-id")


def unread_count(user) -> int:
    return inbox_for(user).filter(read_at__isnull=True).count()
