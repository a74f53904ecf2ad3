from portal.errors import DomainError


class TransitionError(DomainError):
    """The object is not in a state this move starts from (wrong state, or a double click)."""


class NotAllowed(DomainError):
    """The person acting may not take this step (their CMS role or portal role forbids it)."""
