import sys

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.db import DatabaseError, InterfaceError, OperationalError, connection, transaction
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template.response import TemplateResponse
from django.templatetags.static import static
from django.views.decorators.http import require_GET, require_POST
from kombu import Connection

from . import services
from .access import (
    admin_required,
    get_invitation_for,
    get_membership_for,
    member_required,
)
from .errors import DomainError, is_disk_full
from .feedback import attempt, form_errors
from .forms import AcceptInvitationForm, ChangeRoleForm, FirmSettingsForm, InviteMemberForm
from .middleware import CURRENT_FIRM_SESSION_KEY
from .models import Firm, Invitation, Membership, Role, User


@require_GET
def favicon(request):
    return redirect(static("favicon.svg"), permanent=True)


@login_required
@require_GET
def ping(request):
    """A trivial logged-in page: uptime checks, and the benchmark's floor."""
    return HttpResponse(status=204)


@require_GET
def health_live(request):
    """Liveness, for an uptime monitor: the web process answers. No login, no database."""
    return JsonResponse({"status": "ok"})


@require_GET
def health_ready(request):
    """Readiness: the database answers a query and the broker accepts a connection.
    503 with what failed, so a load balancer stops sending traffic and a person sees why."""
    checks = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except DatabaseError as exc:
        checks["database"] = f"down ({type(exc).__name__})"
    try:
        with Connection(
            settings.CELERY_BROKER_URL,
            transport_options=settings.CELERY_BROKER_TRANSPORT_OPTIONS,
            connect_timeout=2,
        ) as broker:
            broker.ensure_connection(max_retries=1, timeout=2)
        checks["broker"] = "ok"
    except Exception as exc:  # noqa: BLE001  (any broker error means not ready)
        checks["broker"] = f"down ({type(exc).__name__})"
    ready = all(value == "ok" for value in checks.values())
    return JsonResponse(checks, status=200 if ready else 503)


def server_error(request):
    """handler500: a full disk is a 507 and a lost database a 503, each saying the truth (we
    could not confirm the change, so check before trying again); anything else is the usual
    500 page."""
    error = sys.exc_info()[1]
    if is_disk_full(error):
        response = render(request, "507.html", status=507)
        response["Retry-After"] = "300"
        return response
    if isinstance(error, (OperationalError, InterfaceError)):
        response = render(request, "503.html", status=503)
        response["Retry-After"] = "30"
        return response
    return render(request, "500.html", status=500)


@require_GET
def home(request):
    if request.user.is_authenticated:
        return redirect("dashboard")
    return redirect("account_login")


@member_required()
def dashboard(request):
    """Firm admins and staff see their caseload; providers and delegates their to-dos."""
    from workflows.views import caseload_page, todos_page

    if request.membership.works_for_firm:
        return caseload_page(request)
    return todos_page(request)


@admin_required
def team(request):
    members = (
        Membership.objects.filter(firm=request.firm, role__in=[Role.ADMIN, Role.STAFF])
        .select_related("user")
        .order_by("-is_active", "user__email")
    )
    invitations = Invitation.objects.open().filter(
        firm=request.firm, role__in=[Role.ADMIN, Role.STAFF]
    )
    return render(
        request,
        "portal/team.html",
        {
            "members": members,
            "invitations": invitations,
            "invite_form": InviteMemberForm(),
            "role_choices": ChangeRoleForm.base_fields["role"].choices,
        },
    )


@admin_required
@require_POST
def invite_member(request):
    form = InviteMemberForm(request.POST)
    if not form.is_valid():
        form_errors(request, form)
        return redirect("team")
    email, role = form.cleaned_data["email"], form.cleaned_data["role"]
    attempt(
        request,
        lambda: services.invitation_create(
            firm=request.firm, email=email, role=role, invited_by=request.user
        ),
        f"Invitation sent to {email}.",
    )
    return redirect("team")


@admin_required
@require_POST
def resend_invitation(request, public_id):
    invitation = get_invitation_for(request, public_id)
    attempt(
        request,
        lambda: services.invitation_resend(invitation=invitation, actor=request.user),
        f"A new link was sent to {invitation.email}; the old one no longer works.",
    )
    return redirect("team")


@admin_required
@require_POST
def revoke_invitation(request, public_id):
    invitation = get_invitation_for(request, public_id)
    attempt(
        request,
        lambda: services.invitation_revoke(invitation=invitation, actor=request.user),
        f"The invitation for {invitation.email} was revoked.",
    )
    return redirect("team")


@admin_required
@require_POST
def change_role(request, public_id):
    membership = get_membership_for(request, public_id)
    form = ChangeRoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose admin or staff.")
        return redirect("team")
    role = form.cleaned_data["role"]
    attempt(
        request,
        lambda: services.membership_change_role(
            membership=membership, role=role, actor=request.user
        ),
        f"{membership.user.display_name} is now {Role(role).label}.",
    )
    return redirect("team")


@admin_required
@require_POST
def deactivate_member(request, public_id):
    """Deactivate, and in the same transaction hand the member's caseload to the admins."""
    from workflows.services import member_caseload_release

    membership = get_membership_for(request, public_id)
    released = []

    @transaction.atomic
    def deactivate():
        services.membership_deactivate(membership=membership, actor=request.user)
        released.append(
            member_caseload_release(firm=request.firm, user=membership.user, actor=request.user)
        )

    if (
        attempt(
            request,
            deactivate,
            f"{membership.user.display_name} was deactivated and logged out everywhere; "
            "nothing more is sent to them.",
        )
        and released[0]
    ):
        count = released[0]
        messages.warning(
            request,
            f"{count} client{'s' if count != 1 else ''} of theirs {'are' if count != 1 else 'is'}"
            " now unassigned, and their messages come to the admins: assign them from the"
            " caseload (filter: Unassigned).",
        )
    return redirect("team")


@admin_required
@require_POST
def reactivate_member(request, public_id):
    membership = get_membership_for(request, public_id)
    attempt(
        request,
        lambda: services.membership_reactivate(membership=membership, actor=request.user),
        f"{membership.user.display_name} can log in again.",
    )
    return redirect("team")


def accept_invitation(request, token):
    """Public page behind the emailed link: name and password, then MFA enrolment.

    Someone who already has an account (a member of another firm) logs in and confirms. A
    link refused at any step (unknown, expired, used, revoked) is a page that says why: the
    refusal is the page, not a message on the next one.
    """
    try:
        return _accept_invitation(request, token)
    except DomainError as exc:
        return render(
            request, "portal/invitation_invalid.html", {"reason": exc.message}, status=400
        )


def _accept_invitation(request, token):
    invitation = services.invitation_from_token(token)
    services.invitation_ensure_pending(invitation)
    if User.objects.filter(email__iexact=invitation.email).exists():
        return _accept_with_existing_account(request, invitation)
    form = AcceptInvitationForm(request.POST or None, email=invitation.email)
    if request.method == "POST" and form.is_valid():
        membership = _accept(
            invitation=invitation,
            password=form.cleaned_data["password1"],
            full_name=form.cleaned_data["full_name"],
        )
        login(request, membership.user, backend="django.contrib.auth.backends.ModelBackend")
        return _welcome(request, membership)
    return render(
        request, "portal/accept_invitation.html", {"invitation": invitation, "form": form}
    )


@transaction.atomic
def _accept(*, invitation, **kwargs):
    """Accept, and for a provider or delegate link the account to their client record."""
    from clients.services import link_portal_user

    membership = services.invitation_accept(invitation=invitation, **kwargs)
    if invitation.subject_uuid:
        link_portal_user(subject_uuid=invitation.subject_uuid, user=membership.user)
    return membership


@admin_required
def firm_settings(request):
    from reports.stuck import DEFAULTS, RULE_LABELS

    stuck_rules = {name: (RULE_LABELS[name], days) for name, days in DEFAULTS.items()}
    # A copy for the form to write on: the service compares the request with the stored row.
    editable = Firm.objects.get(pk=request.firm.pk)
    form = FirmSettingsForm(request.POST or None, instance=editable, stuck_rules=stuck_rules)
    if request.method == "POST" and form.is_valid():
        changes = {name: form.cleaned_data[name] for name in form.Meta.fields}
        changes["stuck_thresholds"] = form.stuck_thresholds()
        attempt(
            request,
            lambda: services.firm_update_settings(
                firm=request.firm, actor=request.user, changes=changes
            ),
            "Settings saved. New reminders follow them; those already scheduled keep their time.",
        )
        return redirect("firm_settings")
    return render(request, "portal/firm_settings.html", {"form": form})


def _accept_with_existing_account(request, invitation):
    if request.method == "POST" and request.user.is_authenticated:
        membership = _accept(invitation=invitation, password=None, user=request.user)
        return _welcome(request, membership)
    return render(
        request,
        "portal/accept_invitation.html",
        {"invitation": invitation, "existing_account": True},
    )


def _welcome(request, membership):
    request.session[CURRENT_FIRM_SESSION_KEY] = str(membership.firm.public_id)
    messages.success(request, f"Welcome to {membership.firm.name}.")
    return redirect("dashboard")


@login_required
def email_managed_by_firm(request):
    messages.info(
        request,
        "Your email address is how your firm knows you. To change it, ask your firm's admin.",
    )
    return redirect("mfa_index")


def csrf_failure(request, reason=""):
    return TemplateResponse(request, "403_csrf.html", {}, status=403)
