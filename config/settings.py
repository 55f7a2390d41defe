"""Django settings: every knob is read from the environment here, and only here.

Each variable has a working default so that `make run` needs nothing set. Secrets that
must be shared by every process of a cluster (`DJANGO_SECRET_KEY`, `RT_TOKEN_SECRET`) are
generated once into the data directory when unset.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("RT_DATA_DIR", BASE_DIR / "var")).resolve()


def _env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r}: use 1/0, true/false, yes/no or on/off.")


def _env_int(name: str, default: int, minimum: int = 0) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r}: expected a whole number.") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name}={raw!r}: must be at least {minimum}.")
    return value


def _env_float(name: str, default: float, minimum: float = 0.0) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r}: expected a number.") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name}={raw!r}: must be at least {minimum}.")
    return value


def _shared_secret(name: str) -> str:
    """The variable's value, else a secret generated once into DATA_DIR.

    Written with O_EXCL so that processes started together agree on one value.
    """
    value = os.environ.get(name)
    if value:
        return value
    path = DATA_DIR / f"{name.lower()}.secret"
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):
            text = path.read_text().strip()
            if text:
                return text
            import time

            time.sleep(0.02)
        raise ImproperlyConfigured(f"{path} is empty: delete it or set {name}.") from None
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


def _redis_url() -> str:
    """REDIS_URL, else the embedded Redis that `make run` started (its URL file)."""
    url = os.environ.get("REDIS_URL")
    if url:
        return url
    url_file = DATA_DIR / "redis" / "url"
    if url_file.exists():
        return url_file.read_text().strip()
    return "redis://127.0.0.1:6379/0"


SECRET_KEY = _shared_secret("DJANGO_SECRET_KEY")
DEBUG = _env_bool("DEBUG", False)
ALLOWED_HOSTS = [
    h.strip() for h in os.environ.get("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",") if h.strip()
]
CSRF_TRUSTED_ORIGINS = [
    o.strip() for o in os.environ.get("CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()
]

INSTALLED_APPS = [
    "daphne",  # first, so that `manage.py runserver` serves WebSockets in development
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "corsheaders",
    "channels",
    "realtime",
    "chat",
    "live",
    "feed",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"

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
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{DATA_DIR / 'db.sqlite3'}",
        conn_max_age=0,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several processes share one SQLite file in a local cluster: wait for locks, and
    # let readers run beside the writer.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 8}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/rooms/"
LOGOUT_REDIRECT_URL = "/rooms/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
WHITENOISE_USE_FINDERS = True  # serve from the source tree: no collectstatic step needed
WHITENOISE_AUTOREFRESH = DEBUG

# Bearer-token requests to the API are answered to any origin, without cookies.
CORS_URLS_REGEX = r"^/api/.*$"
CORS_ALLOW_ALL_ORIGINS = True
CORS_ALLOW_CREDENTIALS = False
CORS_ALLOW_HEADERS = ["authorization", "content-type"]

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
if not DEBUG:
    SECURE_REFERRER_POLICY = "same-origin"
    SESSION_COOKIE_SECURE = _env_bool("SECURE_COOKIES", False)
    CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE

# --- The messaging core -------------------------------------------------------------
REDIS_URL = _redis_url()
RT_KEY_PREFIX = os.environ.get("RT_KEY_PREFIX", "rt")
RT_CHANNEL_PREFIX = os.environ.get("RT_CHANNEL_PREFIX", RT_KEY_PREFIX)
RT_TOKEN_SECRET = _shared_secret("RT_TOKEN_SECRET")
RT_BACKLOG_SIZE = _env_int("RT_BACKLOG_SIZE", 1000, minimum=1)
RT_BACKLOG_TTL = _env_int("RT_BACKLOG_TTL", 86400, minimum=1)
RT_HISTORY_CAP = _env_int("RT_HISTORY_CAP", RT_BACKLOG_SIZE, minimum=0)
RT_HTTP_LIMIT_CAP = _env_int("RT_HTTP_LIMIT_CAP", 1000, minimum=1)
RT_MAX_STREAMS = _env_int("RT_MAX_STREAMS", 100, minimum=1)
RT_PUBLISH_RATE = _env_float("RT_PUBLISH_RATE", 20.0)
RT_PUBLISH_BURST = _env_int("RT_PUBLISH_BURST", 40, minimum=1)
RT_MAX_FRAME = _env_int("RT_MAX_FRAME", 64 * 1024, minimum=1024)
RT_OUTBOX_BYTES = _env_int("RT_OUTBOX_BYTES", 4 * 1024 * 1024, minimum=1024)
RT_POSITION_CHECK = _env_float("RT_POSITION_CHECK", 5.0, minimum=0.05)
RT_PRESENCE_TTL = _env_float("RT_PRESENCE_TTL", 30.0, minimum=0.1)
RT_BAD_FRAME_LIMIT = _env_int("RT_BAD_FRAME_LIMIT", 50, minimum=1)
RT_BUCKETS = _env_int("RT_BUCKETS", 16, minimum=1)
# Seconds a WebSocket close may wait for the peer before the socket is aborted, under
# uvicorn (config/uvicorn_ws.py) and daphne (config/daphne_server.py) alike.
RT_WS_CLOSE_TIMEOUT = _env_float("RT_WS_CLOSE_TIMEOUT", 10.0, minimum=0.1)
RT_IDEMPOTENCY_TTL = 600
# Seconds any Redis call on the request path may take before it answers `unavailable`
# (realtime/deadline.py); a publish cut off so may have been stored: retry with its id.
RT_REDIS_TIMEOUT = _env_float("RT_REDIS_TIMEOUT", 5.0, minimum=0.1)
# The archive (realtime/archive.py): a worker moves queued messages of room: and user:
# streams into the database; a message it took but did not finish goes back to the queue
# after RT_ARCHIVE_VISIBILITY seconds without its worker's heartbeat.
RT_ARCHIVE_VISIBILITY = _env_float("RT_ARCHIVE_VISIBILITY", 60.0, minimum=0.5)
RT_ARCHIVE_BATCH = _env_int("RT_ARCHIVE_BATCH", 200, minimum=1)
RT_ARCHIVE_MAX_ATTEMPTS = _env_int("RT_ARCHIVE_MAX_ATTEMPTS", 5, minimum=1)
RT_ARCHIVE_DAYS_ROOM = _env_int("RT_ARCHIVE_DAYS_ROOM", 365, minimum=1)
RT_ARCHIVE_DAYS_USER = _env_int("RT_ARCHIVE_DAYS_USER", 90, minimum=1)

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {"hosts": [REDIS_URL], "prefix": RT_CHANNEL_PREFIX},
    }
}

LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO").upper()
if LOG_LEVEL not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
    raise ImproperlyConfigured(f"LOG_LEVEL={LOG_LEVEL!r}: use DEBUG, INFO, WARNING or ERROR.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"line": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "line"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        "realtime": {"level": LOG_LEVEL},
        "chat": {"level": LOG_LEVEL},
        "django": {"level": "WARNING" if LOG_LEVEL == "DEBUG" else LOG_LEVEL},
        "channels_redis": {"level": "WARNING"},
    },
}
