from django.urls import path

from . import views

urlpatterns = [
    path("", views.inbox, name="inbox"),
    path("read-all/", views.mark_all_read, name="inbox_mark_all_read"),
    path("preferences/", views.preferences, name="notification_preferences"),
    path("<uuid:public_id>/read/", views.mark_read, name="inbox_mark_read"),
]
