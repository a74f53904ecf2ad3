import os
import subprocess
import sys

import pytest

MANAGE = [sys.executable, "manage.py"]


def run_manage(*args, **env):
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "TESTING", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    }
    return subprocess.run(
        [*MANAGE, *args], env=clean | env, capture_output=True, text=True, timeout=60
    )


def test_production_refuses_to_start_without_secret_key():
    result = run_manage("check", DEBUG="false", ALLOWED_HOSTS="portal.example")
    assert result.returncode != 0
    assert "SECRET_KEY and ALLOWED_HOSTS must be set" in result.stderr


def test_production_refuses_to_start_without_allowed_hosts():
    result = run_manage("check", DEBUG="false", SECRET_KEY="x" * 60)
    assert result.returncode != 0
    assert "SECRET_KEY and ALLOWED_HOSTS must be set" in result.stderr


def test_debug_must_be_a_real_boolean():
    result = run_manage("check", DEBUG="perhaps")
    assert result.returncode != 0


def test_deploy_check_flags_the_development_mail_default():
    result = run_manage(
        "check", "--deploy", DEBUG="false", SECRET_KEY="s" * 64, ALLOWED_HOSTS="portal.example"
    )
    assert result.returncode != 0
    assert "mail.E001" in result.stderr


@pytest.mark.parametrize("flag", ["--deploy"])
def test_production_settings_pass_the_deploy_check(flag):
    result = run_manage(
        "check",
        flag,
        "--fail-level",
        "WARNING",
        DEBUG="false",
        SECRET_KEY="k" * 20 + "-production-like-secret-with-enough-entropy-9f8e7d6c5b4a",
        ALLOWED_HOSTS="portal.example",
        EMAIL_URL="smtp://mail.portal.example:587/?tls=True",
        DATABASE_URL="postgres://credportal@db.portal.example/credportal",
        CELERY_BROKER_URL="redis://cache.portal.example:6379/0",
        CACHE_URL="redis://cache.portal.example:6379/1",
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_development_mail_is_written_under_var_mail(tmp_path):
    result = run_manage(
        "shell",
        "-c",
        "from django.conf import settings; print(settings.MAILERS['default']['OPTIONS']['file_path'])",
        DEBUG="true",
        VAR_DIR=str(tmp_path),
    )
    assert result.stdout.strip().splitlines()[-1] == str(tmp_path / "mail")


def test_deploy_check_fails_when_production_has_no_shared_cache():
    """Finding 4: login rate limits counted per process are no limit behind several workers."""
    result = run_manage(
        "check",
        "--deploy",
        DEBUG="false",
        SECRET_KEY="k" * 20 + "-production-like-secret-with-enough-entropy-9f8e7d6c5b4a",
        ALLOWED_HOSTS="portal.example",
        EMAIL_URL="smtp://mail.portal.example:587/?tls=True",
        CACHE_URL="locmemcache://",
    )
    assert result.returncode != 0
    assert "portal.E001" in result.stderr


@pytest.mark.django_db
def test_postgresql_connections_do_not_jit_compile_queries():
    """At a 30,000-client firm PostgreSQL's JIT compiled the stuck report's and the expiry
    scan's queries, taking longer than running them."""
    from django.db import connection

    from tests.conftest import skip_or_fail

    if connection.vendor != "postgresql":
        skip_or_fail("a PostgreSQL setting: set DATABASE_URL to a PostgreSQL database")
    with connection.cursor() as cursor:
        cursor.execute("SHOW jit")
        assert cursor.fetchone()[0] == "off"
