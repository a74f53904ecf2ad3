from django import forms

from clients.forms import staff_choices
from clients.models import CMSRole, Official
from portal.forms import MemberFilterField, QueryFilterForm

from .models import AccessGrant, DevelopmentRequest, Enrollment, Holder, SignatureRound
from .selectors import STAGES, CaseloadFilters


class CaseloadFilterForm(QueryFilterForm):
    """The caseload's filters; the assignee filter is the admins' (staff see their own)."""

    assignee = MemberFilterField(label="staff member", special=("all", "none"))
    stage = forms.ChoiceField(label="stage", choices=[("", ""), *STAGES.items()], required=False)
    holder = forms.ChoiceField(
        label="waiting on", choices=[("", ""), *Holder.choices], required=False
    )
    due_within = forms.IntegerField(label="due within", min_value=0, max_value=365, required=False)
    overdue = forms.BooleanField(label="overdue", required=False)
    q = forms.CharField(label="search", max_length=100, required=False, strip=True)

    def caseload_filters(self, *, is_admin: bool) -> CaseloadFilters:
        values = self.filters()
        if not is_admin:
            values["assignee"] = ""
        return CaseloadFilters(**values)


class GrantForm(forms.Form):
    method = forms.ChoiceField(choices=AccessGrant.Method.choices)
    requested_role = forms.ChoiceField(
        label="CMS role to ask for (add staff only)",
        choices=[
            ("", "—"),
            (CMSRole.ACCESS_MANAGER, "Access Manager"),
            (CMSRole.STAFF_END_USER, "Staff End User"),
        ],
        required=False,
    )
    pecos = forms.BooleanField(label="PECOS", required=False, initial=True)
    nppes = forms.BooleanField(label="NPPES", required=False, initial=True)
    sent_on = forms.DateField(
        label="Sent in I&A on (if not today)",
        required=False,
        help_text="The 30-day clock counts from the day it was sent in I&A.",
    )


class EnrollmentForm(forms.Form):
    kind = forms.ChoiceField(choices=Enrollment.Kind.choices)


class RoundForm(forms.Form):
    method = forms.ChoiceField(choices=SignatureRound.Method.choices)
    official = forms.ModelChoiceField(
        queryset=Official.objects.none(),
        required=False,
        label="Official who signs (organization, reassignment)",
        to_field_name="public_id",
    )
    provider_pecos_email = forms.EmailField(
        required=False,
        label="Provider's email in PECOS (if not the one on file)",
        help_text="CMS sends its request to sign there.",
    )
    submitted_on = forms.DateField(
        label="Submitted in PECOS on (if not today)",
        required=False,
        help_text="CMS's 20 days to sign count from the submission.",
    )
    reason = forms.CharField(
        max_length=300,
        required=False,
        label="What changed (for a revision)",
        help_text="The provider sees this with the request to sign.",
    )

    def __init__(self, *args, client=None, **kwargs):
        super().__init__(*args, **kwargs)
        if client is not None:
            self.fields["official"].queryset = Official.objects.filter(
                organization__client=client, is_active=True
            ).select_related("organization")


class ReasonForm(forms.Form):
    reason = forms.CharField(max_length=300, required=False)


class ChangeStateForm(forms.Form):
    state = forms.ChoiceField(choices=Enrollment.State.choices)
    reason = forms.CharField(max_length=200, required=False)


class EnrollmentUpdateForm(forms.Form):
    holder = forms.ChoiceField(choices=Holder.choices, label="Who holds the ball")
    holder_reason = forms.CharField(max_length=200, required=False, label="Why")
    follow_up_on = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    tracking_number = forms.CharField(max_length=40, required=False, label="PECOS tracking number")

    def __init__(self, *args, firm, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["assigned_staff"] = staff_choices(firm)


class OutcomeForm(forms.Form):
    outcome = forms.ChoiceField(
        choices=[(state.value, state.label) for state in Enrollment.OUTCOMES]
    )
    decided_on = forms.DateField(
        label="Decided on (the letter's date; if not today)", required=False
    )
    reason = forms.CharField(max_length=300, required=False, label="Reason (from the letter)")
    effective_date = forms.DateField(label="Effective date (approved)", required=False)
    reconsider_by = forms.DateField(
        label="Reconsideration deadline (denied; if the letter gives one)", required=False
    )


class DatedActionForm(forms.Form):
    """A step recorded with the day it happened (a reconsideration filed or decided, a
    development response sent), a reason, and for a reversal the effective date."""

    on = forms.DateField(label="On (if not today)", required=False)
    reason = forms.CharField(max_length=300, required=False)
    effective_date = forms.DateField(label="Effective date (reversed)", required=False)


class DevelopmentForm(forms.Form):
    letter_on = forms.DateField(label="Letter dated (if not today)", required=False)
    due_on = forms.DateField(
        label="Response due (if the letter says; default 30 days after it)", required=False
    )
    holder = forms.ChoiceField(choices=DevelopmentRequest.HOLDERS, label="Who must act")
    asked = forms.CharField(
        max_length=2000,
        label="What the contractor asks for",
        help_text="The provider reads this on their to-do when they must act.",
    )
