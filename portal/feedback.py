"""Turning the outcome of an action into the message the person sees next."""

from collections.abc import Callable

from django.contrib import messages

from .errors import DomainError


def attempt(request, action: Callable[[], object], success: str) -> bool:
    """Run a service; show its refusal as an error message (nothing changed) or `success`."""
    try:
        action()
    except DomainError as exc:
        messages.error(request, exc.message)
        return False
    messages.success(request, success)
    return True


def form_errors(request, form) -> None:
    """A form posted from a page that shows several forms: its errors become messages."""
    for field, errors in form.errors.items():
        label = form.fields[field].label if field in form.fields else ""
        for error in errors:
            messages.error(request, f"{label}: {error}" if label else error)
