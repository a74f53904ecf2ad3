from django.db.models import Count, IntegerField, QuerySet, Subquery
from django.db.models.functions import Coalesce
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


def unread_count_for(user_ref) -> Coalesce:
    """`unread_count` as an expression, so a query already made for the request (the
    membership) brings it along instead of a query of its own."""
    unread = (
        inbox_for(user_ref)
        .filter(read_at__isnull=True)
        .order_by()
        .values("recipient")
        .annotate(count=Count("recipient"))  # a column of the index: read from it alone
        .values("count")
    )
    return Coalesce(Subquery(unread, output_field=IntegerField()), 0)
