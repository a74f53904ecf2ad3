from django.utils.functional import SimpleLazyObject


def membership(request):
    """The base layout names the firm and the person, picks the navigation for the role, and
    shows the number of unread notifications (counted only when a page shows it)."""
    user = getattr(request, "user", None)
    unread = 0
    if user is not None and user.is_authenticated:
        from notifications.selectors import unread_count

        unread = SimpleLazyObject(lambda: unread_count(user))
    return {
        "membership": getattr(request, "membership", None),
        "firm": getattr(request, "firm", None),
        "unread_notifications": unread,
    }
