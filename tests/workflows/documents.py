"""Uploads as a browser sends them: a phone's JPEG, a scanned PDF, a PNG, an iPhone's HEIC,
and what must be refused (a renamed executable, an empty file, one too large)."""

from django.core.files.uploadedfile import SimpleUploadedFile

# The first bytes of each type, as the files themselves start (what `filetype` reads).
PHONE_JPEG = (
    b"\xff\xd8\xff\xe1\x00\x18Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x01\x01\x0f\x00\x02"
    b"\x00\x00\x00\x06Apple\x00" + b"\x00" * 2000 + b"\xff\xd9"
)
PDF = b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\n" + b" " * 1000 + b"\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 500
HEIC = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 500
WINDOWS_EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + b"\x00" * 500


def upload(content: bytes = PDF, name: str = "coi.pdf", content_type: str = "application/pdf"):
    return SimpleUploadedFile(name, content, content_type=content_type)


def phone_photo(name: str = "IMG_0042.JPG"):
    return upload(PHONE_JPEG, name, "image/jpeg")


def large_file(megabytes: float, name: str = "scan.pdf"):
    body = PDF + b"0" * int(megabytes * 1024 * 1024)
    return upload(body, name)
