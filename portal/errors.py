import errno
import sqlite3


class DomainError(Exception):
    """A request the rules refuse: a wrong transition, a duplicate, a stale link.

    The message is written for the person who asked; views show it and change nothing.
    """

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


# ENOSPC: no space left on the device; EDQUOT: the user's disk quota is used up.
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
POSTGRES_DISK_FULL = "53100"  # SQLSTATE disk_full


def is_disk_full(error: BaseException | None) -> bool:
    """A write failed because a disk is full: the OS said so (ENOSPC, EDQUOT), SQLite did
    ("database or disk is full") or PostgreSQL did (disk_full), here or in what caused it
    (Django wraps database errors, storages wrap OS errors)."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in DISK_FULL_ERRNOS:
            return True
        if getattr(error, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
            return True
        if getattr(error, "sqlstate", None) == POSTGRES_DISK_FULL:
            return True
        error = error.__cause__ or error.__context__
    return False
