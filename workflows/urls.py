from django.urls import path

from . import credential_views, revalidation_views, views

urlpatterns = [
    path("profiles/<uuid:public_id>/grants/", views.grant_create, name="grant_create"),
    path(
        "profiles/<uuid:public_id>/enrollments/",
        views.enrollment_create,
        name="enrollment_create",
    ),
    path(
        "profiles/<uuid:public_id>/revalidation-due/",
        revalidation_views.set_due,
        name="revalidation_set_due",
    ),
    path("revalidations/import/", revalidation_views.import_upload, name="revalidation_import"),
    path(
        "revalidations/import/confirm/",
        revalidation_views.import_confirm,
        name="revalidation_import_confirm",
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
    path(
        "enrollments/<uuid:public_id>/outcome/",
        views.enrollment_outcome,
        name="enrollment_outcome",
    ),
    path(
        "enrollments/<uuid:public_id>/reconsideration/<slug:action>/",
        views.reconsideration_action,
        name="reconsideration_action",
    ),
    path(
        "enrollments/<uuid:public_id>/development/",
        views.development_create,
        name="development_create",
    ),
    path(
        "development/<uuid:public_id>/<slug:action>/",
        views.development_action,
        name="development_action",
    ),
    path("rounds/<uuid:public_id>/<slug:action>/", views.round_action, name="round_action"),
    path("signers/<uuid:public_id>/confirm/", views.signer_confirm, name="signer_confirm"),
    path("todos/<str:kind>/<uuid:public_id>/done/", views.todo_done, name="todo_done"),
    path("todos/<str:kind>/<uuid:public_id>/undo/", views.todo_undo, name="todo_undo"),
    path(
        "clients/<uuid:public_id>/credentials/<slug:mode>/",
        credential_views.credential_create,
        name="credential_create",
    ),
    path("credential-kinds/", credential_views.credential_kinds, name="credential_kinds"),
    path(
        "credential-kinds/<uuid:public_id>/<slug:active>/",
        credential_views.credential_kind_active,
        name="credential_kind_active",
    ),
    path(
        "credentials/<uuid:public_id>/",
        credential_views.credential_detail,
        name="credential_detail",
    ),
    path(
        "credentials/<uuid:public_id>/<slug:action>/",
        credential_views.credential_action,
        name="credential_action",
    ),
    path(
        "documents/<uuid:public_id>/download/",
        credential_views.credential_file,
        name="credential_file",
    ),
    path(
        "todos/credential/<uuid:public_id>/upload/",
        credential_views.todo_upload,
        name="todo_upload",
    ),
    path(
        "todos/grant/<uuid:public_id>/not-found/",
        views.todo_firm_not_found,
        name="todo_firm_not_found",
    ),
]
