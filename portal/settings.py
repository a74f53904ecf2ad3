"""credportal settings: one file, driven by the environment.

Every value a deployment changes comes from an environment variable with strict parsing.
With no environment at all the app runs on embedded defaults (SQLite under var/, a
filesystem Celery broker, email written to var/mail/), so `make run` needs no server.
With DEBUG off it refuses to start without SECRET_KEY and ALLOWED_HOSTS.
"""

import sys
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(environ.Env().str("VAR_DIR", default=str(BASE_DIR / "var")))

env = environ.Env()
# A developer's local overrides (never committed); real environment variables win.
if (BASE_DIR / ".env").is_file():
    environ.Env.read_env(BASE_DIR / ".env")

DEBUG = env.bool("DEBUG", default=False)
# Under pytest the suite runs with fast hashers, eager tasks unless a test starts a real
# worker, and relaxed production checks; nothing else changes.
TESTING = env.bool("TESTING", default="pytest" in sys.modules)

if DEBUG or TESTING:
    SECRET_KEY = env.str("SECRET_KEY", default="insecure-development-key-never-used-in-production")
    ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "testserver"])
else:
    try:
        SECRET_KEY = env.str("SECRET_KEY")
        ALLOWED_HOSTS = env.list("ALLOWED_HOSTS")
    except ImproperlyConfigured as exc:
        raise ImproperlyConfigured(
            "With DEBUG off, SECRET_KEY and ALLOWED_HOSTS must be set in the environment."
        ) from exc
    if not ALLOWED_HOSTS:
        raise ImproperlyConfigured("ALLOWED_HOSTS must name at least one host.")

SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[SITE_URL])

INSTALLED_APPS = [
    "portal",
    "clients",
    "workflows",
    "reports",
    "devtools",
    "notifications",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.humanize",
    "django.forms",  # its widget templates, for FORM_RENDERER below
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "allauth",
    "allauth.account",
    "allauth.mfa",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "portal.middleware.NoStoreForSignedInMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "portal.middleware.MembershipMiddleware",
    "portal.middleware.RequireMFAMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

# Forms render through TEMPLATES, so that templates/django/forms/ may override a widget's
# template (the select: docs/performance.md).
FORM_RENDERER = "django.forms.renderers.TemplatesSetting"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "portal.context_processors.membership",
                "notifications.context_processors.unread_notifications",
            ],
        },
    },
]

# What the apps above the tenancy core bring along in the one membership query per request:
# name -> a function of the user's column returning an expression (portal imports none of them).
MEMBERSHIP_ANNOTATIONS = {
    "unread_notifications": "notifications.selectors.unread_count_for",
    # The provider's side's badge: "Provider", or "Office (for Ana Rivera)".
    "is_provider": "clients.selectors.is_provider_for",
    "office_for": "clients.selectors.office_for",
}
# The notification centre groups by client, and notifications import no domain app: the
# clients app names the clients the stored links open (a function of the firm and links).
NOTIFICATION_LINK_LABELS = "clients.selectors.client_names_for_links"

# Database: DATABASE_URL, or a SQLite file under var/ in WAL mode so nothing needs a server.
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'credportal.sqlite3'}")
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        }
    )
    # A file (not :memory:) so a Celery worker started by the tests sees the test database.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-credportal.sqlite3")}
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    # No JIT compilation: our queries are short index scans, and at a large firm's size the
    # planner's estimates made PostgreSQL compile them, taking longer than running them
    # (up to 2 s for the stuck report, 1.1 s per expiry batch; docs/performance.md).
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("options", "-c jit=off")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "portal.User"

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

if TESTING:
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG or TESTING
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# Credential files (licenses, certificates of insurance...): never served as static or media.
# By default a private folder under var/; with CREDENTIALS_BUCKET, an S3-compatible object
# store (AWS S3, MinIO, Wasabi...) through django-storages, private objects only.
CREDENTIALS_BUCKET = env.str("CREDENTIALS_BUCKET", default="")
# Encryption at rest on by default; only an exact "false" turns it off (a typo must not).
_encrypt = env.str("CREDENTIALS_S3_ENCRYPT", default="true").strip().lower()
if _encrypt not in ("true", "false"):
    raise ImproperlyConfigured("CREDENTIALS_S3_ENCRYPT must be true or false.")
if CREDENTIALS_BUCKET:
    STORAGES["credentials"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": CREDENTIALS_BUCKET,
            "endpoint_url": env.str("CREDENTIALS_S3_ENDPOINT_URL", default=None),
            "region_name": env.str("CREDENTIALS_S3_REGION", default=None),
            "access_key": env.str("CREDENTIALS_S3_ACCESS_KEY_ID", default=None),
            "secret_key": env.str("CREDENTIALS_S3_SECRET_ACCESS_KEY", default=None),
            "location": env.str("CREDENTIALS_S3_PREFIX", default="credentials"),
            "default_acl": "private",
            "file_overwrite": False,
            "querystring_auth": True,
            "object_parameters": {"ServerSideEncryption": "AES256"} if _encrypt == "true" else {},
        },
    }
else:
    STORAGES["credentials"] = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {
            "location": env.str("CREDENTIALS_DIR", default=str(VAR_DIR / "credentials")),
            "base_url": None,
            "file_permissions_mode": 0o600,
            "directory_permissions_mode": 0o700,
        },
    }

CACHES = {"default": env.cache_url("CACHE_URL", default="locmemcache://credportal")}
if CACHES["default"]["BACKEND"] == "django.core.cache.backends.redis.RedisCache":
    # A Redis outage degrades to per-process memory instead of failing logins (portal/cache.py).
    CACHES["default"]["BACKEND"] = "portal.cache.ResilientRedisCache"
# Behind the reverse proxy (docs/deploy.md): the client's address for rate limits and the
# audit log comes from the proxy's header, trusting exactly the proxies we run.
ALLAUTH_TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
ALLAUTH_TRUSTED_CLIENT_IP_HEADER = env.str("TRUSTED_CLIENT_IP_HEADER", default=None)

# Sessions live in the database so that a deactivated member can be logged out everywhere.
SESSION_ENGINE = "django.contrib.sessions.backends.db"
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=60 * 60 * 12)

LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "account_login"

# --- allauth -----------------------------------------------------------------------------
ACCOUNT_ADAPTER = "portal.auth.AccountAdapter"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_EMAIL_VERIFICATION = "none"  # every account comes from an emailed invitation
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_PREVENT_ENUMERATION = True
# No "there is no account for this address" email: it would invite the reader to sign up
# (accounts come from invitations), anyone could make us mail any address, and it belongs to
# no firm's outbox. The pages say the same for known and unknown addresses either way.
ACCOUNT_EMAIL_UNKNOWN_ACCOUNTS = False
ACCOUNT_LOGIN_BY_CODE_ENABLED = True
ACCOUNT_LOGIN_BY_CODE_TIMEOUT = 15 * 60
# Six digits: a phone shows the number pad, nothing to switch or dash; allauth allows three
# tries per code and the code lives 15 minutes, so guessing stays out of reach.
ACCOUNT_LOGIN_BY_CODE_FORMAT = {"numeric": True, "length": 6, "dashed": False}
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_SESSION_REMEMBER = None
ACCOUNT_RATE_LIMITS = {
    "login": "30/m/ip",
    "login_failed": env.str("LOGIN_FAILED_RATE", default="10/m/ip,5/5m/key"),
    # bandit: a rate limit named after allauth's action, not a password
    "reset_password": "20/m/ip,5/m/key",  # nosec B105
    "confirm_email": "1/3m/key",
}
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes", "webauthn"]
MFA_TOTP_ISSUER = "credportal"
MFA_WEBAUTHN_ALLOW_INSECURE_ORIGIN = DEBUG or TESTING

# --- email ------------------------------------------------------------------------------
# EMAIL_URL: smtp://user:pass@host:587/?tls=True in production, consolemail:// to print,
# filemail:///path to write files. Default: one file per message under var/mail/.
_email = env.email_url("EMAIL_URL", default=f"filemail://{VAR_DIR / 'mail'}")
if _email["EMAIL_BACKEND"].endswith("filebased.EmailBackend"):
    # django-environ drops the leading "/" of filemail:///abs/path: put it back.
    _mail_options = {"file_path": "/" + (_email.get("EMAIL_FILE_PATH") or "").lstrip("/")}
elif _email["EMAIL_BACKEND"].endswith("smtp.EmailBackend"):
    _mail_options = {
        "host": _email.get("EMAIL_HOST", "localhost"),
        "port": _email.get("EMAIL_PORT", 25),
        "username": _email.get("EMAIL_HOST_USER", ""),
        "password": _email.get("EMAIL_HOST_PASSWORD", ""),
        "use_tls": bool(_email.get("EMAIL_USE_TLS", False)),
        "use_ssl": bool(_email.get("EMAIL_USE_SSL", False)),
        "timeout": env.int("EMAIL_TIMEOUT", default=20),
    }
else:
    _mail_options = {}
_mail_backend = _email["EMAIL_BACKEND"]
if _mail_backend == "django.core.mail.backends.smtp.EmailBackend":
    # The same SMTP backend, able to send notifications exactly once (notifications/smtp.py).
    _mail_backend = "notifications.smtp.EmailBackend"
MAILERS = {"default": {"BACKEND": _mail_backend, "OPTIONS": _mail_options}}
# Seconds after which a claimed, unsent notification is taken back from a silent worker.
NOTIFICATION_CLAIM_TIMEOUT = env.int("NOTIFICATION_CLAIM_TIMEOUT", default=600)
# Seconds for opening all of a delivery batch's SMTP connections together (they open at
# once): a mail server that accepts connections and never greets costs a task this long.
NOTIFICATION_SMTP_CONNECT_BUDGET = env.float("NOTIFICATION_SMTP_CONNECT_BUDGET", default=10.0)
if not 0 < NOTIFICATION_SMTP_CONNECT_BUDGET <= 120:
    raise ImproperlyConfigured("NOTIFICATION_SMTP_CONNECT_BUDGET must be between 0 and 120 s.")
# The delivery clock (notifications/delivery.py): a failed message's first retry waits this
# long (doubled at each attempt, 6 attempts), and while the mail server is down messages try
# again about this often. Settings so that tests and `make chaos` can shrink the clock; leave
# them unset in production.
NOTIFICATION_RETRY_BASE_SECONDS = env.float("NOTIFICATION_RETRY_BASE_SECONDS", default=60.0)
NOTIFICATION_OUTAGE_RETRY_SECONDS = env.float("NOTIFICATION_OUTAGE_RETRY_SECONDS", default=120.0)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="credportal <no-reply@credportal.local>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Celery -----------------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://localhost//")
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 60 * 60}
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "broker"
    for _folder in ("messages", "processed", "control"):
        (_broker_dir / _folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS.update(
        {
            "data_folder_in": str(_broker_dir / "messages"),
            "data_folder_out": str(_broker_dir / "messages"),
            "processed_folder": str(_broker_dir / "processed"),
            "control_folder": str(_broker_dir / "control"),
            "store_processed": False,
        }
    )
    # kombu's, made safe for a full disk (portal/broker.py).
    CELERY_BROKER_TRANSPORT = "portal.broker:Transport"
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=TESTING)
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# Celery's file-backed scheduler, which a full disk neither stops nor corrupts (portal/beat.py).
CELERY_BEAT_SCHEDULER = "portal.beat:Scheduler"
# Periodic work. Each task is idempotent, so a duplicated beat repeats work, never messages.
CELERY_BEAT_SCHEDULE = {
    "deliver-due-notifications": {"task": "notifications.tasks.deliver_due", "schedule": 60.0},
    "expire-due-grants": {"task": "workflows.tasks.expire_due_grants", "schedule": 60.0},
    "lapse-due-reconsiderations": {
        "task": "workflows.tasks.lapse_due_reconsiderations",
        "schedule": 3600.0,
    },
    "send-daily-digests": {"task": "reports.tasks.send_daily_digests", "schedule": 15 * 60.0},
    "reconcile-open-steps": {
        "task": "workflows.tasks.reconcile_open_steps",
        "schedule": 24 * 3600.0,
    },
}

# --- security ---------------------------------------------------------------------------
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "font-src": [CSP.SELF],
    "connect-src": [CSP.SELF],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
    "base-uri": [CSP.SELF],
    "object-src": [CSP.NONE],
}
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CONTENT_TYPE_NOSNIFF = True
SESSION_COOKIE_HTTPONLY = True
CSRF_FAILURE_VIEW = "portal.views.csrf_failure"
if not DEBUG and not TESTING:
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 365)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True

# --- logging: no PII; events name ids, never emails or names ----------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

ADMIN_URL = env.str("ADMIN_URL", default="admin/")
