from django.utils.functional import SimpleLazyObject

from .selectors import unread_count


def unread_notifications(request):
    """The number of unread notifications in the header: read with the membership (see
    settings.MEMBERSHIP_ANNOTATIONS), counted when shown for people without one."""
    membership = getattr(request, "membership", None)
    if membership is not None:
        return {"unread_notifications": membership.unread_notifications}
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return {"unread_notifications": SimpleLazyObject(lambda: unread_count(user))}
    return {"unread_notifications": 0}
