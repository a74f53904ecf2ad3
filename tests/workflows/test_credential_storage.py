"""Where credential files are kept: a private S3-compatible bucket when CREDENTIALS_BUCKET is
set (tested against moto's S3 server on this machine), else a folder under var/ that no URL
serves.

The settings module is evaluated once per process, so each environment is read in a fresh
Python process: the options it prints are the ones a deployment would use, and the S3 tests
build their storage from exactly those options.
"""

import json
import os
import stat
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import boto3
import pytest
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage
from django.urls import Resolver404, resolve
from moto.server import ThreadedMotoServer
from storages.backends.s3 import S3Storage

BASE_DIR = Path(settings.BASE_DIR)
KEY_ID, SECRET = "test-key-id", "test-secret"
PDF = b"%PDF-1.7\n% a certificate of insurance\n"


def settings_for(**env: str) -> dict:
    """portal/settings.py evaluated with this environment (and no other CREDENTIALS_*)."""
    environment = {
        name: value for name, value in os.environ.items() if not name.startswith("CREDENTIALS_")
    }
    environment |= {"TESTING": "1", "DJANGO_SETTINGS_MODULE": "portal.settings", **env}
    code = (
        "import json\n"
        "from django.conf import settings as s\n"
        "print(json.dumps({'credentials': s.STORAGES['credentials'], 'VAR_DIR': str(s.VAR_DIR),"
        " 'STATIC_ROOT': str(s.STATIC_ROOT), 'STATICFILES_DIRS': [str(d) for d in"
        " s.STATICFILES_DIRS]}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def without_proxy():
    """Straight to the local server, whatever proxy the environment names."""
    return urllib.request.build_opener(urllib.request.ProxyHandler({}))


@pytest.fixture(scope="module")
def s3_endpoint():
    """moto's S3 server on a free local port (port 0: the OS picks one)."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def bucket(s3_endpoint):
    name = f"credportal-{uuid.uuid4().hex[:12]}"
    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id=KEY_ID,
        aws_secret_access_key=SECRET,
    )
    client.create_bucket(Bucket=name)
    return client, name


@pytest.fixture
def s3_env(s3_endpoint, bucket):
    _client, name = bucket
    return {
        "CREDENTIALS_BUCKET": name,
        "CREDENTIALS_S3_ENDPOINT_URL": s3_endpoint,
        "CREDENTIALS_S3_REGION": "us-east-1",
        "CREDENTIALS_S3_ACCESS_KEY_ID": KEY_ID,
        "CREDENTIALS_S3_SECRET_ACCESS_KEY": SECRET,
        "CREDENTIALS_S3_PREFIX": "credentials",
    }


@pytest.fixture
def s3_storage(s3_env) -> S3Storage:
    """The storage a deployment with this environment gets, built from its settings."""
    configured = settings_for(**s3_env)["credentials"]
    assert configured["BACKEND"] == "storages.backends.s3.S3Storage"
    return S3Storage(**configured["OPTIONS"])


# --- the environment --------------------------------------------------------------------


def test_a_bucket_in_the_environment_means_private_encrypted_s3():
    configured = settings_for(
        CREDENTIALS_BUCKET="firm-files",
        CREDENTIALS_S3_ENDPOINT_URL="https://s3.example.test",
        CREDENTIALS_S3_REGION="us-east-2",
        CREDENTIALS_S3_ACCESS_KEY_ID="AKIAEXAMPLE",
        CREDENTIALS_S3_SECRET_ACCESS_KEY="secret-example",
        CREDENTIALS_S3_PREFIX="prod/credentials",
    )["credentials"]
    assert configured == {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": "firm-files",
            "endpoint_url": "https://s3.example.test",
            "region_name": "us-east-2",
            "access_key": "AKIAEXAMPLE",
            "secret_key": "secret-example",
            "location": "prod/credentials",
            "default_acl": "private",
            "file_overwrite": False,
            "querystring_auth": True,
            "object_parameters": {"ServerSideEncryption": "AES256"},
        },
    }


def test_server_side_encryption_can_be_turned_off_for_stores_without_it():
    configured = settings_for(CREDENTIALS_BUCKET="firm-files", CREDENTIALS_S3_ENCRYPT="false")
    options = configured["credentials"]["OPTIONS"]
    assert options["object_parameters"] == {}
    # Unset values stay unset (boto3's own chain: instance role, ~/.aws), not empty strings.
    assert options["access_key"] is None
    assert options["endpoint_url"] is None
    assert options["location"] == "credentials"


# --- against an S3 server ---------------------------------------------------------------


def test_a_saved_file_reads_back_and_is_private(s3_storage, s3_endpoint, bucket):
    client, name = bucket
    stored = s3_storage.save("northwind/coi.pdf", ContentFile(PDF))
    with s3_storage.open(stored) as handle:
        assert handle.read() == PDF
    key = f"credentials/{stored}"
    head = client.head_object(Bucket=name, Key=key)
    assert head["ServerSideEncryption"] == "AES256"
    grants = client.get_object_acl(Bucket=name, Key=key)["Grants"]
    assert [grant["Permission"] for grant in grants] == ["FULL_CONTROL"]
    assert all(grant["Grantee"]["Type"] == "CanonicalUser" for grant in grants)
    # Anyone without the keys is refused...
    with pytest.raises(urllib.error.HTTPError) as refused:
        without_proxy().open(f"{s3_endpoint}/{name}/{key}")
    assert refused.value.code in (403, 404)
    # ...and the portal's links are signed and short-lived.
    signed = s3_storage.url(stored)
    assert "Signature" in signed or "X-Amz-Signature" in signed
    assert without_proxy().open(signed).read() == PDF


def test_saving_twice_under_one_name_keeps_both(s3_storage):
    first = s3_storage.save("northwind/license.pdf", ContentFile(b"%PDF version one"))
    second = s3_storage.save("northwind/license.pdf", ContentFile(b"%PDF version two"))
    assert first != second
    with s3_storage.open(first) as handle:
        assert handle.read() == b"%PDF version one"
    with s3_storage.open(second) as handle:
        assert handle.read() == b"%PDF version two"


# --- without a bucket -------------------------------------------------------------------


def test_without_a_bucket_files_go_to_a_private_folder_under_var(tmp_path):
    var = tmp_path / "var"
    read = settings_for(CREDENTIALS_BUCKET="", VAR_DIR=str(var))
    configured = read["credentials"]
    assert configured["BACKEND"] == "django.core.files.storage.FileSystemStorage"
    options = configured["OPTIONS"]
    location = Path(options["location"])
    assert location == var / "credentials"
    assert options["base_url"] is None
    # Files and folders only the app's own user can read.
    storage = FileSystemStorage(**options)
    stored = storage.save("northwind/w9.pdf", ContentFile(PDF))
    assert stat.S_IMODE(os.stat(storage.path(stored)).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(location / "northwind").st_mode) == 0o700


def test_the_default_folder_is_under_var_and_no_url_serves_it():
    read = settings_for(CREDENTIALS_BUCKET="")
    options = read["credentials"]["OPTIONS"]
    location = Path(options["location"])
    assert location.is_relative_to(read["VAR_DIR"])
    for served in (read["STATIC_ROOT"], *read["STATICFILES_DIRS"]):
        assert not location.is_relative_to(served)
        assert not Path(served).is_relative_to(location)
    # `base_url: None` is Django's "fall back to MEDIA_URL" (unset: "/"), not "no URL": what
    # matters is that no route answers the path such a URL would have.
    assert settings.MEDIA_URL in ("", "/")
    url = FileSystemStorage(**options).url("northwind/coi.pdf")
    with pytest.raises(Resolver404):
        resolve(url)
