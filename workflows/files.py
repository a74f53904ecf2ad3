"""Credential files: what an upload may be, and how it is stored.

An upload is judged by its content, never its name: the first bytes must be a PDF, JPEG,
PNG or HEIC (what a scanner or a phone camera makes). It is stored under a generated name
(the uploader's is never used: it may carry a path, a script or a patient's name) in
`STORAGES["credentials"]`, with its size and SHA-256 kept beside it.
"""

import hashlib
import uuid
from dataclasses import dataclass

import filetype
from django.core.files.base import File

from .errors import TransitionError

# What a credential document may be, by the type its content shows: (MIME type, extension).
ACCEPTED = {
    "application/pdf": "pdf",
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/heic": "heic",
    "image/heif": "heic",
}
ACCEPTED_LABEL = "a PDF or a photo (JPEG, PNG or HEIC)"
SNIFF_BYTES = 262  # what `filetype` reads to recognise a type


@dataclass(frozen=True)
class CheckedUpload:
    file: File
    content_type: str
    extension: str
    size: int
    sha256: str


def check_upload(upload, *, max_mb: int) -> CheckedUpload:
    """The upload, if it is a document we accept and not too large; else a clear refusal."""
    if not upload:  # none, or a file input's "clear" (False)
        raise TransitionError(f"Choose a file to upload: {ACCEPTED_LABEL}.")
    size = upload.size or 0
    if size == 0:
        raise TransitionError("That file is empty. Choose the document again.")
    if size > max_mb * 1024 * 1024:
        raise TransitionError(
            f"That file is {size / (1024 * 1024):.1f} MB; the largest accepted is {max_mb} MB. "
            "A phone photo or a scan at normal quality is well under that."
        )
    upload.seek(0)
    head = upload.read(SNIFF_BYTES)
    kind = filetype.guess(head)
    if kind is None or kind.mime not in ACCEPTED:
        raise TransitionError(
            f"That file is not {ACCEPTED_LABEL}, whatever its name says. "
            "Save or photograph the document as one of those and upload it again."
        )
    upload.seek(0)
    digest = hashlib.sha256()
    for chunk in upload.chunks():
        digest.update(chunk)
    upload.seek(0)
    return CheckedUpload(
        file=upload,
        content_type=kind.mime,
        extension=ACCEPTED[kind.mime],
        size=size,
        sha256=digest.hexdigest(),
    )


def stored_name(firm_public_id, extension: str) -> str:
    """A generated name: the firm's folder, then a random one. Nothing of the uploader's."""
    return f"{firm_public_id}/{uuid.uuid4().hex}.{extension}"
