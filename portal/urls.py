"""The one place that knows every app's routes."""

from allauth.account.decorators import secure_admin_login
from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from notifications import views as notification_views
from workflows import calendar_views

from . import views

# The admin login goes through allauth: its rate limits and MFA apply to operators too.
admin.site.login = secure_admin_login(admin.site.login)
admin.site.site_header = "credportal platform administration"

urlpatterns = [
    path("", views.home, name="home"),
    path("favicon.ico", views.favicon, name="favicon"),
    path("dashboard/", views.dashboard, name="dashboard"),
    path("ping/", views.ping, name="ping"),
    path("health/live/", views.health_live, name="health_live"),
    path("health/ready/", views.health_ready, name="health_ready"),
    path("team/", views.team, name="team"),
    path("settings/", views.firm_settings, name="firm_settings"),
    path("team/invite/", views.invite_member, name="invite_member"),
    path(
        "team/invitations/<uuid:public_id>/resend/",
        views.resend_invitation,
        name="resend_invitation",
    ),
    path(
        "team/invitations/<uuid:public_id>/revoke/",
        views.revoke_invitation,
        name="revoke_invitation",
    ),
    path("team/members/<uuid:public_id>/role/", views.change_role, name="change_role"),
    path(
        "team/members/<uuid:public_id>/deactivate/",
        views.deactivate_member,
        name="deactivate_member",
    ),
    path(
        "team/members/<uuid:public_id>/reactivate/",
        views.reactivate_member,
        name="reactivate_member",
    ),
    path("clients/", include("clients.urls")),
    path("work/", include("workflows.urls")),
    path("work/", include("reports.urls")),
    path("notifications/", include("notifications.urls")),
    path("go/<str:token>/", notification_views.sign_in_link, name="sign_in_link"),
    path(
        "go/<str:token>/fresh/",
        notification_views.sign_in_link_fresh,
        name="sign_in_link_fresh",
    ),
    path("invitations/<str:token>/", views.accept_invitation, name="accept_invitation"),
    # A person's deadlines for their calendar app: the secret address is the only key.
    path("calendar/<str:token>.ics", calendar_views.feed, name="calendar_feed"),
    path("calendar/rotate/", calendar_views.feed_rotate, name="calendar_feed_rotate"),
    path("calendar/off/", calendar_views.feed_turn_off, name="calendar_feed_off"),
    # The Security page is allauth's two-factor page with the calendar address added.
    path("accounts/2fa/", calendar_views.security, name="security"),
    # A member's email is their identity in the firm: only an admin's new invitation changes it.
    path("accounts/email/", views.email_managed_by_firm, name="account_email"),
    path("accounts/", include("allauth.urls")),
    path(settings.ADMIN_URL, admin.site.urls),
]

handler500 = "portal.views.server_error"
