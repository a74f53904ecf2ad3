from django import forms
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from . import audit, services
from .feedback import attempt
from .models import AuditEvent, Firm, Invitation, Membership, User
from .signals import address_edited


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ["email"]
    list_display = ["email", "full_name", "is_active", "is_staff", "date_joined"]
    search_fields = ["email", "full_name"]
    fieldsets = [
        (None, {"fields": ["email", "password", "full_name"]}),
        ("Access", {"fields": ["is_active", "is_staff", "is_superuser"]}),
        ("Dates", {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [(None, {"classes": ["wide"], "fields": ["email", "password1", "password2"]})]
    list_filter = ["is_active", "is_staff"]
    filter_horizontal: list[str] = []

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if change and "email" in form.changed_data:  # an operator corrected the address
            for membership in obj.memberships.filter(is_active=True).select_related("firm"):
                address_edited.send(
                    sender=User,
                    firm=membership.firm,
                    old=form.initial.get("email", ""),
                    new=obj.email,
                    actor=request.user,
                )


class MembershipInline(admin.TabularInline):
    """Read-only: members are invited, promoted and deactivated by the firm's admins in the
    portal, where every change is audited."""

    model = Membership
    extra = 0
    fields = ["user", "role", "is_active", "created_at"]
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


class NewFirmForm(forms.ModelForm):
    first_admin_email = forms.EmailField(
        help_text="The firm's first admin receives an invitation at this address."
    )

    class Meta:
        model = Firm
        fields = ["name", "slug", "time_zone", "invitation_days", "contact_email"]


@admin.register(Firm)
class FirmAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "time_zone", "created_at"]
    search_fields = ["name", "slug"]
    readonly_fields = ["public_id", "created_at"]
    inlines = [MembershipInline]

    def get_fields(self, request, obj=None):
        fields = ["name", "slug", "time_zone", "invitation_days", "contact_email"]
        if obj is None:
            return [*fields, "first_admin_email"]
        return [*fields, "public_id", "created_at"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = NewFirmForm
        return super().get_form(request, obj, change=change, **kwargs)

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        audit.record(
            "firm.changed" if change else "firm.created",
            actor=request.user,
            firm=obj,
            target=obj,
            target_label=obj.name,
            data={"fields": form.changed_data},
        )
        if not change:
            attempt(
                request,
                lambda: services.invitation_create(
                    firm=obj,
                    email=form.cleaned_data["first_admin_email"],
                    role="admin",
                    invited_by=request.user,
                ),
            )


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = [
        "email",
        "firm",
        "role",
        "created_at",
        "expires_at",
        "accepted_at",
        "revoked_at",
    ]
    list_filter = ["role", "firm"]
    search_fields = ["email"]
    readonly_fields = [f.name for f in Invitation._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["created_at", "verb", "firm", "actor", "target_type", "target_label", "ip"]
    list_filter = ["verb", "firm"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
