class DomainError(Exception):
    """A request the rules refuse: a wrong transition, a duplicate, a stale link.

    The message is written for the person who asked; views show it and change nothing.
    """

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message
