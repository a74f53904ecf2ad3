from django.utils.functional import SimpleLazyObject


def membership(request):
    """The base layout names the firm and the person, picks the navigation for the role, and
    shows the number of unread notifications (read with the membership; counted when shown
    for people without one)."""
    user = getattr(request, "user", None)
    membership = getattr(request, "membership", None)
    unread = 0
    if membership is not None:
        unread = membership.unread_notifications  # counted with the membership
    elif user is not None and user.is_authenticated:
        from notifications.selectors import unread_count

        unread = SimpleLazyObject(lambda: unread_count(user))
    return {
        "membership": membership,
        "firm": getattr(request, "firm", None),
        "unread_notifications": unread,
    }
