from django.urls import path

from . import report_views, status_views, views

urlpatterns = [
    path("reports/stuck/", report_views.stuck_report_page, name="stuck_report"),
    path("reports/stuck.csv", report_views.stuck_report_csv, name="stuck_report_csv"),
    path("clients/<uuid:public_id>/status/", status_views.client_status, name="client_status"),
    path(
        "clients/<uuid:public_id>/status/send/",
        status_views.client_status_send,
        name="client_status_send",
    ),
    path("profiles/<uuid:public_id>/grants/", views.grant_create, name="grant_create"),
    path(
        "profiles/<uuid:public_id>/enrollments/",
        views.enrollment_create,
        name="enrollment_create",
    ),
    path("grants/<uuid:public_id>/<slug:action>/", views.grant_action, name="grant_action"),
    path("enrollments/<uuid:public_id>/rounds/", views.round_create, name="round_create"),
    path(
        "enrollments/<uuid:public_id>/state/",
        views.enrollment_change_state,
        name="enrollment_change_state",
    ),
    path(
        "enrollments/<uuid:public_id>/update/",
        views.enrollment_update,
        name="enrollment_update",
    ),
    path("rounds/<uuid:public_id>/<slug:action>/", views.round_action, name="round_action"),
    path("todos/<str:kind>/<uuid:public_id>/done/", views.todo_done, name="todo_done"),
]
