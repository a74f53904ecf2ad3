from django.urls import path

from . import export_views, status_views, views

urlpatterns = [
    path("reports/stuck/", views.stuck_report_page, name="stuck_report"),
    path("reports/stuck.csv", views.stuck_report_csv, name="stuck_report_csv"),
    path("reports/firm-export.zip", export_views.firm_export_download, name="firm_export"),
    path("clients/<uuid:public_id>/status/", status_views.client_status, name="client_status"),
    path(
        "clients/<uuid:public_id>/status/send/",
        status_views.client_status_send,
        name="client_status_send",
    ),
]
