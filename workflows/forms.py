from django import forms

from clients.forms import staff_choices
from clients.models import CMSRole, Official
from portal.forms import MemberFilterField, QueryFilterForm

from .models import AccessGrant, DevelopmentRequest, Enrollment, Holder, SignatureRound
from .selectors import SORT_CHOICES, STAGES, CaseloadFilters


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
    sort = forms.ChoiceField(label="sort", choices=[("", ""), *SORT_CHOICES], required=False)
    page = forms.IntegerField(label="page", min_value=1, max_value=100_000, required=False)

    left_out_messages = {
        "sort": "That sort order was not recognised, so the clients are most urgent first.",
        "page": "That page number was not recognised, so this is the first page.",
    }

    def caseload_filters(self, *, is_admin: bool) -> CaseloadFilters:
        """The filters and the order; the page asked for is `page_number` after this."""
        values = self.filters()
        self.page_number = values.pop("page") or 1
        values["sort"] = values["sort"] or "urgency"
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


# --- credentials ------------------------------------------------------------------------

US_STATES = [
    "AL",
    "AK",
    "AZ",
    "AR",
    "CA",
    "CO",
    "CT",
    "DE",
    "DC",
    "FL",
    "GA",
    "HI",
    "ID",
    "IL",
    "IN",
    "IA",
    "KS",
    "KY",
    "LA",
    "ME",
    "MD",
    "MA",
    "MI",
    "MN",
    "MS",
    "MO",
    "MT",
    "NE",
    "NV",
    "NH",
    "NJ",
    "NM",
    "NY",
    "NC",
    "ND",
    "OH",
    "OK",
    "OR",
    "PA",
    "PR",
    "RI",
    "SC",
    "SD",
    "TN",
    "TX",
    "UT",
    "VT",
    "VA",
    "VI",
    "WA",
    "WV",
    "WI",
    "WY",
    "GU",
    "AS",
    "MP",
]
STATE_CHOICES = [("", "—"), *((code, code) for code in US_STATES)]
DOCUMENT_ACCEPT = "application/pdf,image/jpeg,image/png,image/heic,image/heif,image/*"


def _date(label: str, **kwargs) -> forms.DateField:
    return forms.DateField(
        label=label, required=False, widget=forms.DateInput(attrs={"type": "date"}), **kwargs
    )


def _document(label: str = "Document", required: bool = False) -> forms.FileField:
    return forms.FileField(
        label=label,
        required=required,
        help_text="A PDF or a photo (JPEG, PNG or HEIC).",
        widget=forms.FileInput(attrs={"accept": DOCUMENT_ACCEPT}),
    )


class _CredentialFormBase(forms.Form):
    """Kinds and profiles come as lists already read (the client page renders two of these
    forms: their choices cost no query)."""

    kind = forms.ChoiceField()
    profile = forms.ChoiceField(label="For")
    state_code = forms.ChoiceField(label="State", choices=STATE_CHOICES, required=False)

    def __init__(self, *args, kinds, profiles, **kwargs):
        super().__init__(*args, **kwargs)
        self._kinds = {str(kind.public_id): kind for kind in kinds}
        self._profiles = {str(profile.public_id): profile for profile in profiles}
        self.fields["kind"].choices = [(key, kind.name) for key, kind in self._kinds.items()]
        self.fields["profile"].choices = [
            (key, profile.label) for key, profile in self._profiles.items()
        ]

    def clean_kind(self):
        return self._kinds[self.cleaned_data["kind"]]

    def clean_profile(self):
        return self._profiles[self.cleaned_data["profile"]]


class CredentialRequestForm(_CredentialFormBase):
    note = forms.CharField(
        max_length=300,
        required=False,
        label="What to send",
        help_text="The provider reads this on their to-do, e.g. “your current COI, showing "
        "the 1M/3M limits”.",
    )
    due_on = _date("Due by (default: in 14 days)")


class CredentialAddForm(_CredentialFormBase):
    number = forms.CharField(max_length=60, required=False)
    issuer = forms.CharField(max_length=200, required=False, label="Issuer (board, carrier)")
    issued_on = _date("Issued or last done on")
    expires_on = _date("Expires on")
    document = _document()


class CredentialAcceptForm(forms.Form):
    """What staff read off the document, with only the details its kind has."""

    number = forms.CharField(max_length=60, required=False)
    state_code = forms.ChoiceField(label="State", choices=STATE_CHOICES, required=False)
    issuer = forms.CharField(max_length=200, required=False, label="Issuer (board, carrier)")
    issued_on = _date("Issued or last done on")
    expires_on = _date("Expires on (as printed on it)")

    def __init__(self, *args, kind=None, **kwargs):
        super().__init__(*args, **kwargs)
        if kind is None:
            return
        for name, has in (
            ("number", kind.number_label),
            ("state_code", kind.has_state),
            ("issuer", kind.issuer_label),
            ("expires_on", kind.expires),
        ):
            if not has:
                del self.fields[name]
        if kind.number_label:
            self.fields["number"].label = kind.number_label
        if kind.issuer_label:
            self.fields["issuer"].label = kind.issuer_label
        if kind.renews_every_days:
            self.fields["issued_on"].label = "Last done on"
            self.fields[
                "issued_on"
            ].help_text = f"Due again {kind.renews_every_days} days after it."
        else:
            self.fields["issued_on"].label = "Issued on"


class CredentialRenewalForm(forms.Form):
    note = forms.CharField(max_length=300, required=False, label="What to send")
    due_on = _date("Due by (default: in 14 days)")


class DocumentUploadForm(forms.Form):
    document = _document(required=True)


class CredentialKindForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="For example “Hospital privileges letter”.")
    number_label = forms.CharField(
        max_length=40, required=False, label="Its number is called", help_text="Blank: none."
    )
    has_state = forms.BooleanField(required=False, label="One per state")
    issuer_label = forms.CharField(
        max_length=40, required=False, label="Issued by (called)", help_text="Blank: none."
    )
    expires = forms.BooleanField(required=False, label="Has an expiry date")
    needs_file = forms.BooleanField(required=False, initial=True, label="Kept as a document")
