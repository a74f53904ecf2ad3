"""Revalidation due dates for firm staff: CMS's list imported (upload, preview, confirm), or
one profile's date set by hand from the client page."""

from django import forms
from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from clients.models import Profile
from portal.access import firm_member_required, get_for_firm
from portal.feedback import attempt, form_errors

from . import revalidation

SESSION_KEY = "workflows.revalidation_import"
# 50,000 lines of CMS's list (about 200 bytes each), with room to spare.
MAX_UPLOAD_BYTES = 20 * 1024 * 1024


class RevalidationListForm(forms.Form):
    file = forms.FileField(
        label="CSV file",
        help_text="CMS's Revalidation Due Date List from data.cms.gov, downloaded as CSV.",
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_UPLOAD_BYTES:
            raise forms.ValidationError(
                "The file is larger than 20 MB: download the list filtered to your providers' "
                "states or NPIs."
            )
        content = upload.read()
        if content.startswith(b"PK\x03\x04"):
            raise forms.ValidationError(
                "This is a spreadsheet workbook, not a CSV file: download the list as CSV."
            )
        try:
            return content.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise forms.ValidationError(
                "The file is not UTF-8 text: download the list as CSV again, or save it as "
                "CSV UTF-8."
            ) from None


class DueDateForm(forms.Form):
    due_on = forms.DateField(label="Due at CMS", required=False)


def _render(request, form, plan):
    return render(
        request,
        "workflows/revalidation_import.html",
        {"form": form, "plan": plan},
    )


@firm_member_required
def import_upload(request):
    """Upload, then a preview of every profile the list names; nothing is written until
    staff confirm. Only the firm's own profiles' lines are kept for the confirmation."""
    form = RevalidationListForm(request.POST or None, request.FILES or None)
    plan = None
    if request.method == "POST" and form.is_valid():
        parsed = revalidation.parse_csv(form.cleaned_data["file"])
        if parsed.error:
            form.add_error("file", parsed.error)
        else:
            plan = revalidation.plan(firm=request.firm, parsed=parsed)
            request.session[SESSION_KEY] = {
                "listings": parsed.only(plan.matched_npis).as_data(),
                "fingerprint": plan.fingerprint,
            }
    return _render(request, form, plan)


@firm_member_required
@require_POST
def import_confirm(request):
    stash = request.session.get(SESSION_KEY)
    if not stash:
        messages.error(request, "Nothing to import: upload the file again.")
        return redirect("revalidation_import")
    parsed = revalidation.ParsedList.from_data(stash["listings"])
    plan = revalidation.plan(firm=request.firm, parsed=parsed)
    if plan.fingerprint != stash["fingerprint"]:
        messages.error(request, "Due dates changed since the preview. Review the new preview.")
        request.session[SESSION_KEY] = {**stash, "fingerprint": plan.fingerprint}
        return _render(request, RevalidationListForm(), plan)
    done = attempt(
        request,
        lambda: revalidation.apply(firm=request.firm, parsed=parsed, actor=request.user),
        refused="Nothing was imported: {}",
    )
    if not done:
        return redirect("revalidation_import")
    counts = done.result
    del request.session[SESSION_KEY]
    messages.success(
        request,
        f"Revalidation due dates imported: {counts['new']} new, {counts['changed']} changed, "
        f"{plan.count('unchanged')} unchanged, {plan.count('tbd')} still TBD at CMS, "
        f"{plan.count('error')} refused.",
    )
    return redirect("dashboard")


@firm_member_required
@require_POST
def set_due(request, public_id):
    """One profile's due date, as CMS shows it; blank is "TBD" (not known yet)."""
    profile = get_for_firm(
        Profile.objects.select_related("firm", "client", "organization"),
        request.firm,
        public_id=public_id,
    )
    form = DueDateForm(request.POST)
    if not form.is_valid():
        form_errors(request, form)
        return redirect("client_detail", public_id=profile.client.public_id)
    due_on = form.cleaned_data["due_on"]
    if due_on is None:
        messages.info(request, "No date given: CMS shows “TBD” until it sets one. Nothing changed.")
        return redirect("client_detail", public_id=profile.client.public_id)
    done = attempt(
        request,
        lambda: revalidation.revalidation_set_due(
            profile=profile, due_on=due_on, actor=request.user
        ),
    )
    if done:
        if done.result is None:
            messages.info(
                request,
                f"A revalidation due on {due_on:%B %-d, %Y} is already closed for "
                f"{profile.label}. Nothing changed.",
            )
        else:
            messages.success(
                request, f"{profile.label}: revalidation due at CMS on {due_on:%B %-d, %Y}."
            )
    return redirect("client_detail", public_id=profile.client.public_id)
