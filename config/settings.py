"""Django settings: every knob is read from the environment here, and only here.

Each variable has a working default so that `make run` needs nothing set. Secrets that
must be shared by every process of a cluster (`DJANGO_SECRET_KEY`, `RT_TOKEN_SECRET`) are
generated once into the data directory when unset.
"""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any

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


# Words that mark a value copied from documentation rather than generated.
_PLACEHOLDER_WORDS = (
    "change-me", "changeme", "change_me", "placeholder", "secret", "example", "insecure",
    "replace", "default", "password", "dummy", "sample",
)


def _weakness(value: str) -> str | None:
    """Why `value` is not a usable secret, or None. Random secrets of 32 bytes or more
    pass: the rules look for words, long runs of one character and tiny alphabets."""
    if len(value.encode()) < 32:
        return "is shorter than 32 bytes"
    lowered = value.lower()
    word = next((w for w in _PLACEHOLDER_WORDS if w in lowered), None)
    if word is not None:
        return f"looks like a placeholder (it contains {word!r})"
    if re.search(r"(.)\1{5}", value) or len(set(value)) < 10:
        return "looks like a placeholder (one character repeated)"
    return None


def _env_secret(name: str, unset: str = "unset it") -> str | None:
    """The variable's value; outside DEBUG, refused if it is short or a placeholder."""
    value = os.environ.get(name)
    if not value:
        return None
    problem = None if _env_bool("DEBUG", False) else _weakness(value)
    if problem:
        raise ImproperlyConfigured(
            f"{name} {problem}: set it to a long random value, for example the output of "
            f"`python -c 'import secrets; print(secrets.token_urlsafe(48))'`, or {unset}."
        )
    return value


def _shared_secret(name: str) -> str:
    """The variable's value, else a secret generated once into DATA_DIR.

    Written with O_EXCL so that processes started together agree on one value.
    """
    value = _env_secret(name, unset="unset it to have one generated into the data directory")
    if value:
        return value
    path = DATA_DIR / f"{name.lower()}.secret"
    DATA_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
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


def _host_ports(name: str) -> list[tuple[str, int]]:
    """`host:port,host:port,...` from the variable `name` (empty: none)."""
    found = []
    for item in os.environ.get(name, "").split(","):
        host, sep, port = item.strip().rpartition(":")
        if not item.strip():
            continue
        if not sep or not host or not port.isdigit():
            raise ImproperlyConfigured(f"{name}={os.environ[name]!r}: expected host:port,host:port,...")
        found.append((host.strip("[]"), int(port)))
    return found


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
    "ninja",  # its Swagger UI from our own static files, not a CDN
    "csp",
    "axes",
    "channels",
    "realtime",
    "chat",
    "live",
    "feed",
    "ops",
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
    "config.csp.SameHostSocketsCSPMiddleware",  # django-csp's, naming this host's ws: and wss:
    "axes.middleware.AxesMiddleware",  # last, as django-axes asks
]

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses sign-ins that are locked out
    "django.contrib.auth.backends.ModelBackend",
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

# Content-Security-Policy (django-csp) on every page: scripts, styles and connections from
# this origin only, no inline script or style (templates keep theirs in static/; the feed's
# shadow root adopts a constructed sheet). config/csp.py adds this host's ws: and wss: to
# connect-src. Static files go out before this middleware, without the header.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "connect-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "frame-ancestors": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "object-src": ["'none'"],
    }
}

# --- The messaging core -------------------------------------------------------------
REDIS_URL = _redis_url()
# Redis topologies (docs/protocol.md 1.1): a primary watched by Sentinel. Every Redis
# client of the product is built from these in realtime/redis_clients.py.
REDIS_SENTINELS = _host_ports("REDIS_SENTINELS")
REDIS_SENTINEL_MASTER = os.environ.get("REDIS_SENTINEL_MASTER") or "mymaster"
REDIS_PASSWORD = os.environ.get("REDIS_PASSWORD") or None
# Redis Cluster (7+, sharded pub/sub): every client, the channel layer included, works in
# cluster mode (realtime/redis_clients.py, realtime/cluster_layer.py).
REDIS_CLUSTER_NODES = _host_ports("REDIS_CLUSTER_NODES")
if REDIS_CLUSTER_NODES and REDIS_SENTINELS:
    raise ImproperlyConfigured(
        "REDIS_CLUSTER_NODES and REDIS_SENTINELS are both set: a Redis Cluster fails over by "
        "itself, without Sentinel. Set one of them."
    )
RT_KEY_PREFIX = os.environ.get("RT_KEY_PREFIX", "rt")
RT_CHANNEL_PREFIX = os.environ.get("RT_CHANNEL_PREFIX", RT_KEY_PREFIX)
RT_TOKEN_SECRET = _shared_secret("RT_TOKEN_SECRET")
RT_BACKLOG_SIZE = _env_int("RT_BACKLOG_SIZE", 1000, minimum=1)
RT_BACKLOG_TTL = _env_int("RT_BACKLOG_TTL", 86400, minimum=1)
RT_HISTORY_CAP = _env_int("RT_HISTORY_CAP", RT_BACKLOG_SIZE, minimum=0)
RT_HTTP_LIMIT_CAP = _env_int("RT_HTTP_LIMIT_CAP", 1000, minimum=1)
RT_MAX_STREAMS = _env_int("RT_MAX_STREAMS", 100, minimum=1)
# Rate limits (realtime/ratelimit.py). Publishes are per sender on a process, over all
# of its sockets and requests; a backend publisher (a `pubs` grant covering the stream)
# has its own rate. Typing is per user; subscribe churn and presence queries per socket.
# A rate of 0 turns that limit off.
RT_PUBLISH_RATE = _env_float("RT_PUBLISH_RATE", 20.0)
RT_PUBLISH_BURST = _env_int("RT_PUBLISH_BURST", 40, minimum=1)
RT_BACKEND_PUBLISH_RATE = _env_float("RT_BACKEND_PUBLISH_RATE", 1000.0)
RT_BACKEND_PUBLISH_BURST = _env_int("RT_BACKEND_PUBLISH_BURST", 2000, minimum=1)
RT_TYPING_RATE = _env_float("RT_TYPING_RATE", 2.0)
RT_TYPING_BURST = _env_int("RT_TYPING_BURST", 4, minimum=1)
RT_SUBSCRIBE_RATE = _env_float("RT_SUBSCRIBE_RATE", 10.0)
RT_SUBSCRIBE_BURST = _env_int("RT_SUBSCRIBE_BURST", 120, minimum=1)
RT_PRESENCE_QUERY_RATE = _env_float("RT_PRESENCE_QUERY_RATE", 1.0)
RT_PRESENCE_QUERY_BURST = _env_int("RT_PRESENCE_QUERY_BURST", 5, minimum=1)
# Bytes of messages one HTTP read answers at most (at least one message): the caller
# pages on from where the answer stops.
RT_HTTP_READ_BYTES = _env_int("RT_HTTP_READ_BYTES", 1024 * 1024, minimum=1024)
RT_MAX_FRAME = _env_int("RT_MAX_FRAME", 64 * 1024, minimum=1024)
RT_OUTBOX_BYTES = _env_int("RT_OUTBOX_BYTES", 4 * 1024 * 1024, minimum=1024)
RT_POSITION_CHECK = _env_float("RT_POSITION_CHECK", 5.0, minimum=0.05)
RT_PRESENCE_TTL = _env_float("RT_PRESENCE_TTL", 30.0, minimum=0.1)
# Presence changes are sent at most once per interval per room and process, and not at
# all past RT_PRESENCE_MAX_MEMBERS users (occupancy counts stand in); see realtime/presence.py.
RT_PRESENCE_INTERVAL = _env_float("RT_PRESENCE_INTERVAL", 1.0, minimum=0.05)
RT_PRESENCE_MAX_MEMBERS = _env_int("RT_PRESENCE_MAX_MEMBERS", 100, minimum=1)
RT_BAD_FRAME_LIMIT = _env_int("RT_BAD_FRAME_LIMIT", 50, minimum=1)
# Hash-tag buckets of the Redis keys (realtime/names.py): one Redis Cluster slot each, so a
# cluster needs many to spread its streams (README "Redis Cluster"). Never change it once
# data exists: a stream's keys would be looked for in another bucket.
RT_BUCKETS = _env_int("RT_BUCKETS", 1024 if REDIS_CLUSTER_NODES else 16, minimum=1)
# Seconds a WebSocket close may wait for the peer before the socket is aborted, under
# uvicorn (config/uvicorn_ws.py) and daphne (config/daphne_server.py) alike.
RT_WS_CLOSE_TIMEOUT = _env_float("RT_WS_CLOSE_TIMEOUT", 10.0, minimum=0.1)
# Milliseconds: under uvicorn, a socket written less than this long ago is held until
# this long has passed, so that the frames of a burst go out in one `write`; longer while
# one round of writes to every socket takes longer (config/uvicorn_ws.py). A quiet socket
# is written at once; 0 writes at the end of every turn of the event loop.
RT_WS_COALESCE_MS = _env_float("RT_WS_COALESCE_MS", 2.0, minimum=0.0)
RT_IDEMPOTENCY_TTL = 600
# Seconds between re-checks of every session socket's rights (realtime/sessions.py);
# logout, and saving or deleting a user, take effect at once besides.
RT_SESSION_RECHECK = _env_float("RT_SESSION_RECHECK", 30.0, minimum=0.1)
# Seconds a process trusts what it read of a user's standing on a group or room (member,
# owner, muted, banned; realtime/standing.py). Changes are pushed to every process at
# once; this bounds how long one whose push was lost can lag, open sockets included.
RT_RIGHTS_TTL = _env_float("RT_RIGHTS_TTL", 5.0, minimum=0.1)
# Seconds any Redis call on the request path may take before it answers `unavailable`
# (realtime/deadline.py); a publish cut off so may have been stored: retry with its id.
RT_REDIS_TIMEOUT = _env_float("RT_REDIS_TIMEOUT", 5.0, minimum=0.1)
# With RT_REDIS_WAIT_REPLICAS > 0, a publish is acknowledged (and fanned out) only once
# that many replicas hold it (Redis WAIT, up to RT_REDIS_WAIT_MS): a failover cannot take
# it back. A wait that times out answers `unavailable` (retry with the same id).
RT_REDIS_WAIT_REPLICAS = _env_int("RT_REDIS_WAIT_REPLICAS", 0, minimum=0)
RT_REDIS_WAIT_MS = _env_int("RT_REDIS_WAIT_MS", 500, minimum=1)
if RT_REDIS_WAIT_REPLICAS and REDIS_CLUSTER_NODES:
    # WAIT counts the replicas of the connection's own writes; a cluster client spreads its
    # writes over many connections, so the count would say nothing.
    raise ImproperlyConfigured(
        "RT_REDIS_WAIT_REPLICAS is not supported with REDIS_CLUSTER_NODES: a failover of a shard "
        "that loses acknowledged messages is announced with a new epoch instead (docs/protocol.md)."
    )
# The archive (realtime/archive.py): a worker moves queued messages of room: and user:
# streams into the database; a message it took but did not finish goes back to the queue
# after RT_ARCHIVE_VISIBILITY seconds without its worker's heartbeat.
RT_ARCHIVE_VISIBILITY = _env_float("RT_ARCHIVE_VISIBILITY", 60.0, minimum=0.5)
RT_ARCHIVE_BATCH = _env_int("RT_ARCHIVE_BATCH", 200, minimum=1)
RT_ARCHIVE_MAX_ATTEMPTS = _env_int("RT_ARCHIVE_MAX_ATTEMPTS", 5, minimum=1)
RT_ARCHIVE_DAYS_ROOM = _env_int("RT_ARCHIVE_DAYS_ROOM", 365, minimum=1)
RT_ARCHIVE_DAYS_USER = _env_int("RT_ARCHIVE_DAYS_USER", 90, minimum=1)


def _env_networks(name: str, default: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """A comma-separated list of IP addresses and CIDR networks."""
    raw = os.environ.get(name)
    raw = default if raw is None else raw
    try:
        return [ipaddress.ip_network(item.strip(), strict=False) for item in raw.split(",") if item.strip()]
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}={raw!r}: {exc}.") from None


# /metrics (realtime/health.py) answers clients in RT_METRICS_ALLOW (loopback by default;
# the client is the socket's peer, or under uvicorn a local proxy's X-Forwarded-For), and
# any client with `Authorization: Bearer $RT_METRICS_TOKEN` when that is set.
RT_METRICS_ALLOW = _env_networks("RT_METRICS_ALLOW", "127.0.0.0/8,::1")
RT_METRICS_TOKEN = _env_secret("RT_METRICS_TOKEN")

# Sign-in throttling (django-axes): RT_LOGIN_FAILURE_LIMIT wrong passwords for one username
# from one client address lock that pair out for RT_LOGIN_COOLOFF seconds, counted again
# from each attempt made meanwhile; a success clears the count. Attempts are kept in the
# database, so every process of a cluster sees them.
AXES_FAILURE_LIMIT = _env_int("RT_LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(seconds=_env_float("RT_LOGIN_COOLOFF", 900.0, minimum=1.0))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_HTTP_RESPONSE_CODE = 429
AXES_LOCKOUT_CALLABLE = "chat.throttle.locked_out"
# Sign-up throttling (chat/throttle.py): RT_SIGNUP_LIMIT attempts per client address per
# RT_SIGNUP_WINDOW seconds, counted in Redis for the whole cluster.
RT_SIGNUP_LIMIT = _env_int("RT_SIGNUP_LIMIT", 20, minimum=1)
RT_SIGNUP_WINDOW = _env_int("RT_SIGNUP_WINDOW", 3600, minimum=1)

def _layer_host() -> Any:
    """The channel layer's Redis: the Sentinel-watched primary, or REDIS_URL."""
    if not REDIS_SENTINELS:
        return REDIS_URL
    host: dict[str, Any] = {"sentinels": REDIS_SENTINELS, "master_name": REDIS_SENTINEL_MASTER}
    if REDIS_PASSWORD:
        host["password"] = REDIS_PASSWORD
    return host


if REDIS_CLUSTER_NODES:
    # channels_redis has no Redis Cluster support: the project's own layer, on sharded
    # pub/sub, with each stream's group in the slot of the stream's keys.
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "realtime.cluster_layer.ShardedChannelLayer",
            "CONFIG": {
                "nodes": [f"{host}:{port}" for host, port in REDIS_CLUSTER_NODES],
                "prefix": RT_CHANNEL_PREFIX,
                "password": REDIS_PASSWORD,
                "group_tag": "realtime.names.group_hash_tag",
                "timeout": RT_REDIS_TIMEOUT,
            },
        }
    }
else:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [_layer_host()], "prefix": RT_CHANNEL_PREFIX},
        }
    }

LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO").upper()
if LOG_LEVEL not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
    raise ImproperlyConfigured(f"LOG_LEVEL={LOG_LEVEL!r}: use DEBUG, INFO, WARNING or ERROR.")
# Every log record of the process, the servers' own included, is redacted (tokens, bearer
# headers, Redis passwords) before any handler sees it.
LOGGING_CONFIG = "config.log_redaction.configure_logging"
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
