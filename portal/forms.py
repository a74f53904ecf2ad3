import uuid
import zoneinfo

from django import forms
from django.contrib import messages
from django.contrib.auth import password_validation

from .models import MAX_DAY, Firm, Role, normalize_email, parse_day_list, validate_portal_email


class DayListField(forms.Field):
    """A cadence typed as days separated by commas ("3, 7, 14"), stored as a JSON list."""

    default_error_messages = {
        "invalid": "Write days as whole numbers separated by commas, e.g. 3, 7, 14.",
        "range": f"Days must be between 0 and {MAX_DAY}.",
    }

    def __init__(self, *, encoder=None, decoder=None, show_hidden_initial=False, **kwargs):
        # A JSONField's form field. Its callable default would add a hidden "initial-" copy
        # of the list, which nothing here reads.
        super().__init__(**kwargs)

    def prepare_value(self, value):
        if isinstance(value, list):
            return ", ".join(str(day) for day in value)
        return value

    def to_python(self, value) -> list[int]:
        if isinstance(value, list):
            return parse_day_list(value)
        parts = [part for part in (value or "").replace(" ", "").split(",") if part]
        if not all(part.isascii() and part.isdigit() for part in parts):
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        days = parse_day_list([int(part) for part in parts])
        if any(day > MAX_DAY for day in days):
            raise forms.ValidationError(self.error_messages["range"], code="range")
        return days


class QueryFilterForm(forms.Form):
    """The GET filters of a list page, validated and bounded in one place.

    A value that does not validate is left out (the field falls back to its empty value) and
    named in a message, so a junk link still shows the list, never a server error.
    """

    # What to say when a field's value is left out, where "That <label> filter was not
    # recognised" does not fit (a sort order, a page number).
    left_out_messages: dict[str, str] = {}

    def __init__(self, request, *, announce: bool = True):
        super().__init__(request.GET)
        self.request = request
        self.announce = announce

    def filters(self) -> dict:
        self.is_valid()
        values = {}
        for name, field in self.fields.items():
            if name in self.errors:
                if self.announce:
                    messages.warning(
                        self.request,
                        self.left_out_messages.get(name)
                        or f"That {field.label} filter was not recognised, so it was left out.",
                    )
                values[name] = field.to_python(None)
            else:
                values[name] = self.cleaned_data.get(name)
        return values


class MemberFilterField(forms.CharField):
    """A member's public id, or one of the `special` words ("all", "none")."""

    def __init__(self, *, special=(), **kwargs):
        self.special = tuple(special)
        super().__init__(required=False, max_length=36, **kwargs)

    def clean(self, value):
        value = super().clean(value)
        if value in ("", *self.special):
            return value
        try:
            return str(uuid.UUID(value))
        except ValueError:
            raise forms.ValidationError("not a member", code="invalid") from None


FIRM_ROLE_CHOICES = [(Role.STAFF.value, Role.STAFF.label), (Role.ADMIN.value, Role.ADMIN.label)]


class InviteMemberForm(forms.Form):
    email = forms.EmailField(label="Email address", validators=[validate_portal_email])
    role = forms.ChoiceField(choices=FIRM_ROLE_CHOICES, initial=Role.STAFF)

    def clean_email(self):
        return normalize_email(self.cleaned_data["email"])


class ChangeRoleForm(forms.Form):
    role = forms.ChoiceField(choices=FIRM_ROLE_CHOICES)


class AcceptInvitationForm(forms.Form):
    full_name = forms.CharField(label="Your full name", max_length=200)
    password1 = forms.CharField(
        label="Choose a password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=password_validation.password_validators_help_text_html(),
    )
    password2 = forms.CharField(
        label="Repeat the password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def __init__(self, *args, email: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.email = email

    def clean(self):
        cleaned = super().clean()
        p1, p2 = cleaned.get("password1"), cleaned.get("password2")
        if p1 and p2 and p1 != p2:
            self.add_error("password2", "The two passwords differ.")
        elif p1:
            from .models import User

            probe = User(email=self.email, full_name=cleaned.get("full_name", ""))
            try:
                password_validation.validate_password(p1, probe)
            except forms.ValidationError as exc:
                self.add_error("password1", exc)
        return cleaned


def _hour_label(hour: int) -> str:
    """0 -> "12 AM", 9 -> "9 AM", 13 -> "1 PM": how a US office says an hour."""
    return f"{(hour - 1) % 12 + 1} {'AM' if hour < 12 else 'PM'}"


HOUR_CHOICES = [(hour, _hour_label(hour)) for hour in range(24)]


def _listed(days: list[int]) -> str:
    """[3, 7, 14] -> "3, 7 and 14"."""
    words = [str(day) for day in days]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


# The firm settings page's sections, in order: every field of the form is in exactly one, so
# the form's fields are read from here (the stuck thresholds, added per rule, come last).
FIRM_SETTINGS_SECTIONS = (
    (
        "Firm",
        "How providers, CMS and your emails name you.",
        ("name", "ia_name", "npi", "contact_email", "time_zone"),
    ),
    (
        "Clocks",
        "How long each step may take. CMS's own limits are the most you can set.",
        (
            "grant_expiry_days",
            "signature_deadline_days",
            "development_response_days",
            "reconsideration_days",
            "invitation_days",
        ),
    ),
    (
        "Reminders",
        "When providers are reminded and staff alerted. Day lists are whole days "
        "separated by commas, e.g. 3, 7, 14.",
        (
            "reminder_hour",
            "digest_hour",
            "grant_reminder_days",
            "grant_staff_alert_days",
            "round_reminder_days",
            "round_staff_alert_days",
            "credential_reminder_days",
            "document_reminder_days",
        ),
    ),
    (
        "Email and uploads",
        "",
        ("notification_max_age_hours", "upload_max_mb"),
    ),
)


class FirmSettingsForm(forms.ModelForm):
    """A firm admin's settings: contact, time zone, deadlines, cadences, stuck thresholds,
    shown in sections (`sections()`), each cadence with a sentence saying when it fires."""

    class Meta:
        model = Firm
        fields = [name for _, _, names in FIRM_SETTINGS_SECTIONS for name in names]
        field_classes = dict.fromkeys(
            [
                "grant_reminder_days",
                "grant_staff_alert_days",
                "round_reminder_days",
                "round_staff_alert_days",
                "credential_reminder_days",
                "document_reminder_days",
            ],
            DayListField,
        )
        labels = {
            "ia_name": "Name registered in I&A",
            "time_zone": "Time zone",
            "invitation_days": "Invitation links last (days)",
            "grant_reminder_days": "Provider reminders, connection request (days after sent)",
            "grant_staff_alert_days": "Staff alerts, connection request (days after sent)",
            "round_reminder_days": "Provider reminders, signature (days after submitted)",
            "round_staff_alert_days": "Staff alerts, signature (days after submitted)",
            "credential_reminder_days": "Expiry reminders (days before)",
            "document_reminder_days": "Document request reminders (days before due)",
            "reminder_hour": "Reminders go out at",
            "digest_hour": "Staff daily digest at",
        }
        help_texts = {
            "time_zone": "Every date and time in the portal and its emails is in this zone. "
            "Type a city to search, e.g. Chicago.",
        }

    STUCK_SECTION = (
        "Stuck thresholds",
        "An item shows on the stuck report after this many days (or, for a deadline, "
        "this many days before it).",
    )

    def __init__(self, *args, stuck_rules: dict[str, tuple[str, int]], **kwargs):
        """`stuck_rules`: each stuck rule's name -> (label, default days), from the reports."""
        super().__init__(*args, **kwargs)
        for name in ("reminder_hour", "digest_hour"):
            field = self.fields[name]
            self.fields[name] = forms.TypedChoiceField(
                label=field.label,
                choices=HOUR_CHOICES,
                coerce=int,
                help_text=f"In the firm's time zone ({self.instance.time_zone}).",
                error_messages={"invalid_choice": "Choose an hour from the list (0 to 23)."},
            )
        # Searchable as you type: the page lists every real zone in a `<datalist>`.
        self.fields["time_zone"].widget = forms.TextInput(
            attrs={"list": "time-zones", "autocomplete": "off"}
        )
        current = self.instance.stuck_thresholds or {}
        for name, (label, default) in stuck_rules.items():
            self.fields[f"stuck_{name}"] = forms.IntegerField(
                label=label[:1].upper() + label[1:],
                min_value=0,
                max_value=365,
                initial=current.get(name, default),
                widget=forms.NumberInput(attrs={"class": "days"}),
            )

    @staticmethod
    def time_zones() -> list[str]:
        return sorted(zoneinfo.available_timezones())

    def sections(self) -> list[tuple[str, str, list]]:
        """(title, description, [(bound field, its cadence sentence or "")]) per section."""
        previews = self.cadence_previews()
        stuck = [name for name in self.fields if name.startswith("stuck_")]
        return [
            (title, description, [(self[name], previews.get(name, "")) for name in names])
            for title, description, names in (*FIRM_SETTINGS_SECTIONS, (*self.STUCK_SECTION, stuck))
        ]

    def cadence_previews(self) -> dict[str, str]:
        """Each day list as a sentence, from what was typed when it is valid, else from what is
        saved: "On day 3, 7 and 14 of the 30-day connection request"."""
        previews = {}
        for name in self.Meta.field_classes:
            days = self._current(name)
            if name in self.CADENCE_CLOCKS:
                clock, what = self.CADENCE_CLOCKS[name]
                limit = self._current(clock)
                previews[name] = f"On day {_listed(sorted(days))} of the {limit}-day {what} clock."
            else:
                ordered = sorted(days, reverse=True)
                unit = "day" if ordered == [1] else "days"
                previews[name] = f"{_listed(ordered)} {unit} before."
        return previews

    def _current(self, name):
        if self.is_bound and name in getattr(self, "cleaned_data", {}):
            return self.cleaned_data[name]
        return getattr(self.instance, name)

    # Each cadence with the clock it must fall inside: a reminder after the deadline would
    # tell someone to do what CMS no longer accepts.
    CADENCE_CLOCKS = {
        "grant_reminder_days": ("grant_expiry_days", "connection request"),
        "grant_staff_alert_days": ("grant_expiry_days", "connection request"),
        "round_reminder_days": ("signature_deadline_days", "signature"),
        "round_staff_alert_days": ("signature_deadline_days", "signature"),
    }

    def clean(self):
        cleaned = super().clean()
        for cadence, (clock, what) in self.CADENCE_CLOCKS.items():
            days, limit = cleaned.get(cadence), cleaned.get(clock)
            if not days or limit is None:
                continue
            late = [day for day in days if day >= limit]
            if late:
                listed = ", ".join(str(day) for day in late)
                self.add_error(
                    cadence,
                    f"Day {listed} falls on or after the {limit}-day {what} deadline: every "
                    f"day must be before day {limit}.",
                )
        return cleaned

    def stuck_thresholds(self) -> dict[str, int]:
        return {
            name.removeprefix("stuck_"): value
            for name, value in self.cleaned_data.items()
            if name.startswith("stuck_")
        }
