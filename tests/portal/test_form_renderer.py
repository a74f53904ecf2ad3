"""Forms render through TEMPLATES (`FORM_RENDERER`), whose select writes its options inline
(docs/decisions.md, "Rendering cost on long pages")."""

import pytest
from django import forms
from django.forms.renderers import DjangoTemplates, TemplatesSetting


@pytest.mark.parametrize(
    "widget",
    [
        forms.Select(choices=[("", "—"), ("NY", "NY"), ("CA", "CA")]),
        forms.Select(choices=[("Group", [("a", "A & B"), ("b", "<b>")]), ("c", "C")]),
        forms.SelectMultiple(choices=[("1", "One"), ("2", "Two"), ("3", "Three")]),
        forms.NullBooleanSelect(),
        forms.Select(
            attrs={"id": "x", "aria-describedby": "x_help", "required": True},
            choices=[("1", "One")],
        ),
    ],
)
def test_the_inline_select_renders_what_djangos_own_did(widget):
    """templates/django/forms/widgets/select.html writes the options inline: the same HTML
    as Django's template with one include per option, for every select the project uses."""
    value = ["1", "3"] if isinstance(widget, forms.SelectMultiple) else "CA"
    ours = widget.render("field", value, renderer=TemplatesSetting())
    djangos = widget.render("field", value, renderer=DjangoTemplates())
    assert " ".join(ours.split()) == " ".join(djangos.split())
