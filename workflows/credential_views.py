"""The credentials file: staff record, request and review credentials; the provider's side
uploads from its to-dos; documents download only through an access-checked, audited view."""

from django.http import FileResponse, Http404
from django.shortcuts import redirect, render
from django.utils.text import slugify
from django.views.decorators.http import require_POST

from clients.models import Client, Profile
from clients.selectors import get_client_for
from portal import audit
from portal.access import admin_required, firm_member_required, get_for_firm, member_required
from portal.feedback import attempt, form_errors
from portal.models import Role

from . import credentials as services
from .deadlines import status_of
from .forms import (
    CredentialAcceptForm,
    CredentialAddForm,
    CredentialKindForm,
    CredentialRenewalForm,
    CredentialRequestForm,
    DocumentUploadForm,
    ReasonForm,
)
from .models import Credential, CredentialFile, CredentialKind
from .rules import Step, may_do
from .todos import party_for


def credential_forms(client: Client, profiles=None, *, data=None, files=None) -> dict:
    """The two forms of the client page's credentials section (empty, or bound to a post);
    `profiles`: the client's, when the page has them already."""
    kinds = services.catalogue(client.firm)
    if profiles is None:
        profiles = list(Profile.objects.filter(client=client).select_related("organization"))
    return {
        "request": CredentialRequestForm(
            data, kinds=kinds, profiles=profiles, auto_id="credreq_%s"
        ),
        "add": CredentialAddForm(data, files, kinds=kinds, profiles=profiles, auto_id="credadd_%s"),
    }


def _get_credential(request, public_id) -> Credential:
    return get_for_firm(
        Credential.objects.select_related(
            "kind", "firm", "profile__client", "profile__organization"
        ),
        request.firm,
        public_id=public_id,
    )


def _back(credential: Credential):
    return redirect("credential_detail", public_id=credential.public_id)


@firm_member_required
@require_POST
def credential_create(request, public_id, mode):
    """Ask the provider for a document, or record one the firm already has."""
    client = get_client_for(request, public_id)
    if mode not in ("request", "add"):
        raise Http404("No such action.")
    form = credential_forms(client, data=request.POST, files=request.FILES)[mode]
    if not form.is_valid():
        form_errors(request, form)
        return redirect("client_detail", public_id=client.public_id)
    data = form.cleaned_data
    common = {
        "profile": data["profile"],
        "kind": data["kind"],
        "actor": request.user,
        "state_code": data["state_code"],
    }
    if mode == "request":
        attempt(
            request,
            lambda: services.credential_request(note=data["note"], due_on=data["due_on"], **common),
            f"Asked {client.first_name} for the {data['kind'].in_sentence}: it is on their "
            "to-dos, with reminders.",
        )
    else:
        attempt(
            request,
            lambda: services.credential_add(
                number=data["number"],
                issuer=data["issuer"],
                issued_on=data["issued_on"],
                expires_on=data["expires_on"],
                upload=data["document"],
                **common,
            ),
            f"{data['kind'].name} recorded on file.",
        )
    return redirect("client_detail", public_id=client.public_id)


@firm_member_required
def credential_detail(request, public_id):
    """One credential: its details, where it stands, every version of its document, and what
    staff may do now. Opening it is an audit event (it shows a client's documents)."""
    credential = _get_credential(request, public_id)
    files = list(credential.files.select_related("uploaded_by").order_by("-version"))
    audit.record_read("credential.viewed", request, credential.profile.client, part=str(credential))
    status, status_label = status_of(credential, request.firm)
    state = credential.state
    moves = Credential.TRANSITIONS[Credential.State(state)]
    return render(
        request,
        "workflows/credential_detail.html",
        {
            "credential": credential,
            "client": credential.profile.client,
            "files": files,
            "status": status,
            "status_label": status_label,
            "may_accept": Credential.State.ACCEPTED in moves
            and (files or not credential.kind.needs_file),
            "may_reject": Credential.State.REJECTED in moves,
            "may_renew": state == Credential.State.ACCEPTED,
            "may_cancel": Credential.State.CANCELLED in moves,
            "may_upload": state != Credential.State.CANCELLED and credential.kind.needs_file,
            "accept_form": CredentialAcceptForm(
                kind=credential.kind,
                initial={
                    "number": credential.number,
                    "state_code": credential.state_code,
                    "issuer": credential.issuer,
                    "issued_on": credential.issued_on,
                    "expires_on": credential.expires_on,
                },
                auto_id="accept_%s",
            ),
            "renewal_form": CredentialRenewalForm(auto_id="renew_%s"),
            "upload_form": DocumentUploadForm(auto_id="upload_%s"),
        },
    )


def _accept(credential, request):
    form = CredentialAcceptForm(request.POST, kind=credential.kind)
    if not form.is_valid():
        form_errors(request, form)
        return
    data = form.cleaned_data
    attempt(
        request,
        lambda: services.credential_accept(credential=credential, actor=request.user, **data),
        "Accepted: it is on file, and its expiry reminders follow the new date.",
    )


def _reject(credential, request):
    form = ReasonForm(request.POST)
    reason = form.cleaned_data["reason"] if form.is_valid() else ""
    attempt(
        request,
        lambda: services.credential_reject(
            credential=credential, actor=request.user, reason=reason
        ),
        "Rejected: the provider is asked again, with your reason.",
    )


def _renew(credential, request):
    form = CredentialRenewalForm(request.POST)
    if not form.is_valid():
        form_errors(request, form)
        return
    attempt(
        request,
        lambda: services.credential_request_renewal(
            credential=credential, actor=request.user, **form.cleaned_data
        ),
        "Asked for the renewed document: it is on the provider's to-dos.",
    )


def _cancel(credential, request):
    form = ReasonForm(request.POST)
    reason = form.cleaned_data["reason"] if form.is_valid() else ""
    attempt(
        request,
        lambda: services.credential_cancel(
            credential=credential, actor=request.user, reason=reason
        ),
        "Marked no longer needed: its reminders stopped; its files are kept.",
    )


def _upload(credential, request):
    form = DocumentUploadForm(request.POST, request.FILES)
    if not form.is_valid():
        form_errors(request, form)
        return
    attempt(
        request,
        lambda: services.credential_upload(
            credential=credential, upload=form.cleaned_data["document"], actor=request.user
        ),
        "Uploaded: a new version, waiting for review.",
    )


CREDENTIAL_ACTIONS = {
    "accept": _accept,
    "reject": _reject,
    "renew": _renew,
    "cancel": _cancel,
    "upload": _upload,
}


@firm_member_required
@require_POST
def credential_action(request, public_id, action):
    if action not in CREDENTIAL_ACTIONS:
        raise Http404("No such action.")
    credential = _get_credential(request, public_id)
    CREDENTIAL_ACTIONS[action](credential, request)
    return _back(credential)


# --- documents --------------------------------------------------------------------------


@member_required()
def credential_file(request, public_id):
    """Download one version of a document: the firm's staff, or the provider's side when
    their role covers the profile's credentials. Anyone else: 404, as for a missing one.
    Streamed, as an attachment, never rendered by the browser; every download is audited."""
    file = get_for_firm(
        CredentialFile.objects.select_related(
            "credential__kind",
            "credential__firm",
            "credential__profile__client",
            "credential__profile__organization",
        ),
        request.firm,
        public_id=public_id,
    )
    credential = file.credential
    if not request.membership.works_for_firm:
        client = get_client_for(
            request,
            credential.profile.client.public_id,
            Client.objects.prefetch_related("delegates__roles"),
        )
        party = party_for(request.user, client)
        if party is None or not may_do(party, Step.UPLOAD_DOCUMENT, credential.profile):
            raise Http404("No such document.")
    try:
        handle = file.file.open("rb")
    except OSError as exc:
        raise Http404("This document's file is missing from storage.") from exc
    audit.record_read(
        "credential.file_downloaded",
        request,
        credential.profile.client,
        part=str(credential),
        data={"version": file.version},
    )
    extension = file.file.name.rsplit(".", 1)[-1]
    name = f"{slugify(credential.kind.name)}-v{file.version}.{extension}"
    response = FileResponse(
        handle, as_attachment=True, filename=name, content_type=file.content_type
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


@member_required(Role.CLIENT)
@require_POST
def todo_upload(request, public_id):
    """The provider's side sends the document asked for (a phone photo or a PDF)."""
    credential = get_for_firm(
        Credential.objects.select_related("kind", "firm", "profile__client"),
        request.firm,
        public_id=public_id,
    )
    client = get_client_for(
        request,
        credential.profile.client.public_id,
        Client.objects.prefetch_related("delegates__roles"),
    )
    party = party_for(request.user, client)
    if party is None:
        raise Http404("No such step.")
    form = DocumentUploadForm(request.POST, request.FILES)
    if not form.is_valid():
        form_errors(request, form)
        return redirect("dashboard")
    attempt(
        request,
        lambda: services.credential_upload(
            credential=credential,
            upload=form.cleaned_data["document"],
            actor=request.user,
            party=party,
        ),
        "Thank you: we have it, and will tell you if anything is missing.",
    )
    return redirect("dashboard")


# --- the firm's catalogue -----------------------------------------------------------------


@admin_required
def credential_kinds(request):
    """The firm's credential catalogue: the defaults and its own kinds; add one, or take one
    out of the choices (credentials of that kind stay)."""
    form = CredentialKindForm(request.POST or None)
    if request.method == "POST":
        if form.is_valid():
            if attempt(
                request,
                lambda: services.credential_kind_add(
                    firm=request.firm, actor=request.user, **form.cleaned_data
                ),
                f"“{form.cleaned_data['name']}” added to the catalogue.",
            ):
                return redirect("credential_kinds")
        else:
            form_errors(request, form)
    kinds = sorted(
        services.catalogue(request.firm, active_only=False),
        key=lambda kind: (not kind.is_active, kind.name.lower()),
    )
    return render(request, "workflows/credential_kinds.html", {"kinds": kinds, "form": form})


@admin_required
@require_POST
def credential_kind_active(request, public_id, active):
    kind = get_for_firm(
        CredentialKind.objects.select_related("firm"), request.firm, public_id=public_id
    )
    if active not in ("on", "off"):
        raise Http404("No such action.")
    attempt(
        request,
        lambda: services.credential_kind_set_active(
            kind=kind, actor=request.user, active=active == "on"
        ),
        f"“{kind.name}” is {'back in' if active == 'on' else 'out of'} the choices.",
    )
    return redirect("credential_kinds")
