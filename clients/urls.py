from django.urls import path

from . import views

urlpatterns = [
    path("new/", views.client_new, name="client_new"),
    path("import/", views.import_upload, name="client_import"),
    path("import/confirm/", views.import_confirm, name="client_import_confirm"),
    path("import/template.csv", views.import_template, name="client_import_template"),
    path("<uuid:public_id>/", views.client_detail, name="client_detail"),
    path("<uuid:public_id>/edit/", views.client_edit, name="client_edit"),
    path("<uuid:public_id>/access-log/", views.client_access_log, name="client_access_log"),
    path("<uuid:public_id>/reassign/", views.client_reassign, name="client_reassign"),
    path("<uuid:public_id>/organizations/", views.organization_add, name="organization_add"),
    path("<uuid:public_id>/delegates/", views.delegate_add, name="delegate_add"),
    path("<uuid:public_id>/ia/", views.client_ia, name="client_ia"),
    path(
        "organizations/<uuid:public_id>/officials/",
        views.official_add,
        name="official_add",
    ),
    path(
        "officials/<uuid:public_id>/remove/",
        views.official_remove,
        name="official_remove",
    ),
    path("delegates/<uuid:public_id>/remove/", views.delegate_remove, name="delegate_remove"),
    path(
        "invite/<str:kind>/<uuid:public_id>/",
        views.portal_invite,
        name="portal_invite",
    ),
]
