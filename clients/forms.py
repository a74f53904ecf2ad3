from django import forms

from portal.forms import QueryFilterForm
from portal.models import Membership, User, validate_portal_email

from .models import Client, CMSRole, Official, Organization


def staff_members(firm):
    """The firm's active admins and staff: whom clients and enrollments can be assigned to."""
    return User.objects.filter(
        pk__in=Membership.objects.firm_staff(firm).values("user_id")
    ).order_by("full_name", "email")


def staff_choices(firm) -> forms.ModelChoiceField:
    return forms.ModelChoiceField(
        queryset=staff_members(firm),
        required=False,
        label="Assigned staff member",
        empty_label="Unassigned",
        to_field_name="public_id",
    )


class ClientForm(forms.ModelForm):
    class Meta:
        model = Client
        fields = [
            "first_name",
            "last_name",
            "credentials",
            "npi",
            "email",
            "phone",
            "assigned_staff",
            "notes",
        ]
        widgets = {"notes": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args, firm, **kwargs):
        super().__init__(*args, **kwargs)
        self.firm = firm
        self.fields["assigned_staff"] = staff_choices(firm)
        self.fields["npi"].widget.attrs.update({"inputmode": "numeric", "autocomplete": "off"})

    def validate_unique(self):
        # The firm is set by the service; uniqueness per firm is checked there (and by the DB).
        pass


class OrganizationForm(forms.ModelForm):
    provider_is_authorized_official = forms.BooleanField(
        required=False,
        label="The provider is its Authorized Official (usual for a solo PLLC)",
    )

    class Meta:
        model = Organization
        fields = ["legal_name", "kind", "npi"]
        labels = {"npi": "Organizational NPI (optional)"}


class OfficialForm(forms.Form):
    """Who signs for an organization: the provider, a delegate, or someone else."""

    role = forms.ChoiceField(choices=Official.Role.choices)
    person = forms.ChoiceField(label="Who")
    name = forms.CharField(max_length=200, required=False, label="Name (someone else)")
    email = forms.EmailField(
        required=False,
        validators=[validate_portal_email],
        label="Email entered in PECOS",
        help_text="CMS sends its request to sign there (default: the person's own).",
    )

    def __init__(self, *args, client: Client, **kwargs):
        super().__init__(*args, **kwargs)
        self.delegates = {
            str(delegate.public_id): delegate
            for delegate in client.delegates.all()
            if delegate.is_active
        }
        self.fields["person"].choices = [
            ("provider", f"{client.display_name} (the provider)"),
            *[(key, f"{d.name} (delegate)") for key, d in self.delegates.items()],
            ("other", "Someone else"),
        ]

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("person") == "other" and not (cleaned.get("name") and cleaned.get("email")):
            raise forms.ValidationError("Give the name and the PECOS email of someone else.")
        return cleaned


class ClientIAForm(forms.ModelForm):
    """The provider's I&A login: who controls it, and whether a password reset is likely."""

    class Meta:
        model = Client
        fields = ["ia_controller", "ia_controller_note", "password_reset_likely"]


class DelegateForm(forms.Form):
    name = forms.CharField(max_length=200)
    email = forms.EmailField(validators=[validate_portal_email])
    title = forms.CharField(max_length=100, required=False, label="Title (optional)")

    def __init__(self, *args, profiles, **kwargs):
        super().__init__(*args, **kwargs)
        self.profiles = list(profiles)
        for profile in self.profiles:
            self.fields[f"role_{profile.public_id}"] = forms.ChoiceField(
                label=f"CMS role on {profile.label}",
                choices=[("", "No role on this profile"), *CMSRole.choices],
                required=False,
            )

    def roles(self) -> dict:
        return {
            profile: self.cleaned_data[f"role_{profile.public_id}"]
            for profile in self.profiles
            if self.cleaned_data.get(f"role_{profile.public_id}")
        }


class ImportForm(forms.Form):
    file = forms.FileField(label="CSV file", help_text="Use the template's columns; UTF-8.")

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > 5 * 1024 * 1024:
            raise forms.ValidationError("The file is larger than 5 MB; split it.")
        try:
            return upload.read().decode("utf-8-sig")
        except UnicodeDecodeError:
            raise forms.ValidationError(
                "The file is not UTF-8 text; save it as CSV UTF-8."
            ) from None


class TimelineFilterForm(QueryFilterForm):
    """The client page's `?profile=`: one of this client's profiles, or all of them."""

    profile = forms.ChoiceField(required=False, label="profile")

    def __init__(self, request, *, profiles):
        super().__init__(request)
        self.fields["profile"].choices = [("", "All profiles")] + [
            (str(profile.public_id), profile.label) for profile in profiles
        ]
