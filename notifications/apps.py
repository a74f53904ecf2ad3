from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications"

    def ready(self):
        # Connect the receivers that put the portal's invitations and allauth's emails in
        # the outbox, and the one that takes a bouncing mark off a corrected address.
        from . import account_emails, bounces, invitations  # noqa: F401
