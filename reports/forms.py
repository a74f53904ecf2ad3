"""The stuck report's filters: the page and its CSV read them through one form."""

from django import forms

from portal.forms import MemberFilterField, QueryFilterForm
from workflows.models import Holder

from .reports import ReportFilters
from .stuck import AGE_BUCKETS, REASONS, STAGES


def _choices(pairs) -> list[tuple[str, str]]:
    return [("", ""), *pairs]


class StuckFilterForm(QueryFilterForm):
    stage = forms.ChoiceField(label="stage", choices=_choices(STAGES.items()), required=False)
    staff = MemberFilterField(label="staff member")
    holder = forms.ChoiceField(label="waiting on", choices=_choices(Holder.choices), required=False)
    reason = forms.ChoiceField(label="reason", choices=_choices(REASONS.items()), required=False)
    age = forms.ChoiceField(
        label="age", choices=_choices((b[0], b[0]) for b in AGE_BUCKETS), required=False
    )

    def report_filters(self, *, is_admin: bool) -> ReportFilters:
        values = self.filters()
        if not is_admin:
            values["staff"] = ""
        return ReportFilters(**values)
