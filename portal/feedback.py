"""Turning the outcome of an action into the message the person sees next."""

from collections.abc import Callable
from dataclasses import dataclass

from django.contrib import messages

from .errors import DomainError


@dataclass(frozen=True)
class Done[T]:
    """What a service returned when it did what was asked (true, even when that is None)."""

    result: T


def attempt[T](
    request,
    action: Callable[[], T],
    success: str = "",
    *,
    form=None,
    refused: str = "{}",
) -> Done[T] | None:
    """Run a service, the one place a view turns its refusal into words.

    1. Refused (a `DomainError`: nothing changed): the reason, worded by `refused`, becomes
       an error of `form` when there is one (the page shows the form again), else an error
       message; None is returned.
    2. Done: `success` (if any) becomes a success message, and the service's result is
       returned in a `Done`, for the words and the redirect that name it.
    """
    try:
        result = action()
    except DomainError as exc:
        reason = refused.format(exc.message)
        if form is not None:
            form.add_error(None, reason)
        else:
            messages.error(request, reason)
        return None
    if success:
        messages.success(request, success)
    return Done(result)


def form_errors(request, form) -> None:
    """A form posted from a page that shows several forms: its errors become messages."""
    for field, errors in form.errors.items():
        label = form.fields[field].label if field in form.fields else ""
        for error in errors:
            messages.error(request, f"{label}: {error}" if label else error)
