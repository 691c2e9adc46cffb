"""Django settings for Pickup.

Every value an operator may change is read once here from the environment
through the typed helpers in ``pickup.env``; ``.env.example`` lists them all,
and a ``.env`` file beside manage.py is read when present (variables already
set in the environment win). The defaults are for development on one machine.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _
from csp.constants import NONE, SELF
from dotenv import load_dotenv

from pickup.env import env_bool, env_int, env_list, env_str
from pickup.redis_clients import RedisPlace

BASE_DIR = Path(__file__).resolve().parent.parent
load_dotenv(BASE_DIR / ".env", override=False)

DEBUG = env_bool("DEBUG", False)

SECRET_KEY = env_str("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("Set SECRET_KEY (or DEBUG=true for development).")
    SECRET_KEY = "django-insecure-pickup-development-key-do-not-use-in-production"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "axes",
    "orders",
    "notifications",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into its 429 page.
    "axes.middleware.AxesMiddleware",
]

# Content-Security-Policy (django-csp): scripts, styles, images and sockets
# from this site only, no inline script or style, no framing. The browser
# tests fail on any violation (tests/browser/conftest.py).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}


ROOT_URLCONF = "pickup.urls"
ASGI_APPLICATION = "pickup.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        # Kept open: Channels closes "old" connections around every database
        # call, and with 0 each alert claim and each order paid for a new one.
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 600, minimum=0),
        conn_health_checks=True,
    )
}
# Under daphne every concurrent request runs in its own thread, and a
# persistent connection per thread ran PostgreSQL out of connections at ten
# page loads in flight. On PostgreSQL each process instead borrows from a
# psycopg pool of at most DATABASE_POOL_MAX_SIZE connections (Django returns a
# connection to it wherever it would have closed one) and a request waits for
# a free one; 0 falls back to DATABASE_CONN_MAX_AGE, e.g. behind PgBouncer.
DATABASE_POOL_MAX_SIZE = env_int("DATABASE_POOL_MAX_SIZE", 10, minimum=0)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and DATABASE_POOL_MAX_SIZE:
    DATABASES["default"]["CONN_MAX_AGE"] = 0  # the pool keeps connections open instead
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": min(2, DATABASE_POOL_MAX_SIZE),
        "max_size": DATABASE_POOL_MAX_SIZE,
        "timeout": 30,  # seconds a request waits for a connection before it fails
    }
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web server read while run_queue writes; the busy timeout
    # makes concurrent writers wait for the lock instead of failing at once.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Redis: the kitchen queue, the cache and the channel layer share one server,
# each under its own key prefix so nothing of anybody else's is touched. With
# REDIS_SENTINELS every client asks those sentinels for the primary of
# REDIS_SENTINEL_MASTER instead (REDIS_URL then gives only the database number
# and password): pickup/redis_clients.py is the one place that knows.
REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")
REDIS_KEY_PREFIX = env_str("REDIS_KEY_PREFIX", "pickup:")
REDIS = RedisPlace.from_settings(
    REDIS_URL, env_list("REDIS_SENTINELS", []), env_str("REDIS_SENTINEL_MASTER", "")
)

# Connecting takes milliseconds on a LAN; a primary whose machine is gone (a
# failover's seconds) answers nothing, and each Redis call of a page load or a
# staff request then waits the whole connect timeout (docs/delivery.md).
CACHES = {"default": REDIS.cache(key_prefix=REDIS_KEY_PREFIX + "cache", socket_timeout=5, connect_timeout=1)}
# A cache read or write Redis missed is a miss, not an error, and not logged either: django-redis would
# log each at ERROR with a traceback, three per picker request through an outage that /readyz, the
# limits' warning and run_queue already report.
DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = False

# channels-redis 4.3 on redis-py 8: the pool's default 5 s socket timeout equals
# the layer's blocking-receive timeout and closes idle sockets (1011), and the
# default pool of 100 raises instead of waiting. The timeout is set here; the
# layer's pool (notifications/layer_pool.py) waits for a free connection and
# closes idle ones after a crowd.
CHANNEL_LAYERS = {
    "default": {
        # channels-redis's layer plus a batched group_send (notifications/layer.py).
        "BACKEND": "notifications.layer.PickupChannelLayer",
        "CONFIG": {
            "hosts": [
                REDIS.channel_layer_host(
                    socket_timeout=30,
                    socket_connect_timeout=5,
                    socket_keepalive=True,
                    health_check_interval=15,
                    max_connections=env_int("CHANNEL_LAYER_MAX_CONNECTIONS", 100, minimum=10),
                )
            ],
            "prefix": REDIS_KEY_PREFIX + "asgi",
            # All sockets of one daphne process share one inbox; a burst of
            # alerts must not overflow it. Lost messages are replayed anyway.
            "capacity": env_int("CHANNEL_LAYER_CAPACITY", 10_000, minimum=100),
            "expiry": 60,
        },
    }
}

SESSION_ENGINE = "django.contrib.sessions.backends.db"
SESSION_COOKIE_AGE = 60 * 60 * 24 * 30

LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("zh-hans", _("Simplified Chinese"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env_str("TIME_ZONE", "Asia/Shanghai")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# In development static files are served straight from static/, no collectstatic.
WHITENOISE_USE_FINDERS = DEBUG

LOGIN_URL = "admin:login"
# Admin logins are throttled by django-axes: after ADMIN_LOGIN_FAILURE_LIMIT
# wrong passwords for one username from one address, that pair is refused
# (429) for 15 minutes or until staff clear it under Axes → Access attempts.
# Attempts are database rows, so every web process sees them.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("ADMIN_LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_COOLOFF_TIME = timedelta(minutes=15)
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False  # no banner in every process's log
# The address counted is the one behind PICKUP_TRUSTED_PROXIES (pickup/addresses.py).
AXES_CLIENT_IP_CALLABLE = "pickup.addresses.client_address"
# Staff passwords guard every order and customer: Django's four checks
# (not like the username, long enough, not a common one, not all digits).
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Security. Production defaults are strict; each can be relaxed behind a
# TLS-terminating proxy or for local tests through the environment.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31_536_000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)
if env_bool("SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Probes and the scraper may ask over plain HTTP inside the network: a
# redirect to HTTPS would read as "up" to a probe whatever the answer.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"

# Pickup's own settings. The restaurant's rules (hours, slots, capacity) are
# edited by staff in the admin, not here.
# Largest WebSocket text message the customer consumer reads, in bytes.
PICKUP_MAX_MESSAGE_BYTES = env_int("PICKUP_MAX_MESSAGE_BYTES", 16_384, minimum=1024)
# Limits that keep one script from booking every pickup slot (orders/limits.py);
# 0 switches one off.
PICKUP_ORDERS_PER_MINUTE_PER_CUSTOMER = env_int("PICKUP_ORDERS_PER_MINUTE_PER_CUSTOMER", 10, minimum=0)
PICKUP_ORDERS_PER_MINUTE_PER_ADDRESS = env_int("PICKUP_ORDERS_PER_MINUTE_PER_ADDRESS", 60, minimum=0)
PICKUP_OPEN_ORDERS_PER_CUSTOMER = env_int("PICKUP_OPEN_ORDERS_PER_CUSTOMER", 5, minimum=0)
# New customer sessions (POST /session/) one client address may start per minute.
PICKUP_SESSIONS_PER_MINUTE_PER_ADDRESS = env_int("PICKUP_SESSIONS_PER_MINUTE_PER_ADDRESS", 30, minimum=0)
# What one customer socket may send, and how many sockets one session or one
# client address may hold on one web process (orders/socket_limits.py; 0 = no cap).
PICKUP_MESSAGES_PER_SECOND_PER_SOCKET = env_int("PICKUP_MESSAGES_PER_SECOND_PER_SOCKET", 10, minimum=1)
PICKUP_SOCKETS_PER_SESSION = env_int("PICKUP_SOCKETS_PER_SESSION", 20, minimum=0)
PICKUP_SOCKETS_PER_ADDRESS = env_int("PICKUP_SOCKETS_PER_ADDRESS", 200, minimum=0)
# How many proxies of ours stand in front of daphne, each appending to
# X-Forwarded-For: the client address that the limits above and the admin-login
# throttle count is that many entries from the header's right (pickup/addresses.py).
# 0: the header is ignored, the socket's peer is the client.
PICKUP_TRUSTED_PROXIES = env_int("PICKUP_TRUSTED_PROXIES", 0, minimum=0)

# Web Push (notifications/vapid.py reads these; nothing else does). The
# private key is the raw P-256 scalar and the public key the uncompressed
# point, both base64url: what `manage.py vapid_keys` prints. The subject is a
# mailto: or https: address push services may use to reach the operator.
# Empty keys turn Web Push off; `check --deploy` warns about that.
VAPID_PRIVATE_KEY = env_str("VAPID_PRIVATE_KEY", "")
VAPID_PUBLIC_KEY = env_str("VAPID_PUBLIC_KEY", "")
VAPID_SUBJECT = env_str("VAPID_SUBJECT", "")

# Operations (README, "Operations"). /metrics answers only a request that
# carries this token (``Authorization: Bearer …``); empty, it answers nobody.
# A token, not an address list: an address check is only as good as the
# proxy's configuration (PICKUP_TRUSTED_PROXIES), a token holds anyway.
METRICS_TOKEN = env_str("METRICS_TOKEN", "")
if METRICS_TOKEN and len(METRICS_TOKEN) < 32:
    raise ImproperlyConfigured("METRICS_TOKEN must be at least 32 characters (python -c 'import secrets; print(secrets.token_urlsafe(32))')")
# prometheus-client's multiprocess mode: every daphne and run_queue of this
# machine writes its metrics to files here, and /metrics adds them all up. The
# library reads the variable itself, when it is first imported (after these
# settings). Empty, each process keeps its own and /metrics shows only the
# web process that answered (run_queue's figures nowhere).
PROMETHEUS_MULTIPROC_DIR = env_str("PROMETHEUS_MULTIPROC_DIR", "")
if PROMETHEUS_MULTIPROC_DIR and not Path(PROMETHEUS_MULTIPROC_DIR).is_dir():
    raise ImproperlyConfigured(f"PROMETHEUS_MULTIPROC_DIR {PROMETHEUS_MULTIPROC_DIR!r} is not a directory")
if not PROMETHEUS_MULTIPROC_DIR:
    # Set but empty (a copied .env.example) would put the library in
    # multiprocess mode writing to the current directory.
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)

# Internal timings of the delivery engine. They are not operator knobs: the
# promises in docs/delivery.md are stated for these values. Tests change them
# through Django's settings (tests/settings.py), never the environment.
# How long a claim on a kitchen-queue entry or an alert lasts before another
# worker may take it over (a worker that died mid-way).
PICKUP_CLAIM_LEASE_SECONDS = 30
# An alert sent but not acknowledged by any tab is pushed again after this (doubling).
PICKUP_ALERT_RESEND_SECONDS = 10
# Web processes push alerts from in-memory timers (the fast path); off, only
# run_queue sends them (the durable path alone, as after a web server crash).
PICKUP_WEB_TIMERS = True
# While web timers run, run_queue leaves a due alert to them this long before
# sending it itself; racing them at the same instant only slows both.
PICKUP_RUN_QUEUE_GRACE_MS = 250
# Marking orders ready at their pickup time is not what the customer waits
# for (the alert is); run_queue does it this much later, out of the alerts' way.
PICKUP_KITCHEN_DELAY_MS = 1000
# Web timers claim an alert this long before it is due, so that at the due
# time only the push is left (notifications/timers.py). Must stay well below
# the claim lease (system check pickup.E001).
PICKUP_TIMER_LOOKAHEAD_MS = 200
# Web processes arm in-memory timers for alerts due within this horizon.
PICKUP_TIMER_HORIZON_SECONDS = 120
# A request must arrive whole (headers and body) within this many seconds of
# its first byte, or daphne answers 408 and closes the connection: a client
# trickling a header line every few seconds held it for ever
# (pickup/http_connections.py). Browsers send a page request in one go.
PICKUP_REQUEST_DEADLINE_SECONDS = 20

# Logs go to standard error, one line per record: plain text, or with
# LOG_FORMAT=json one JSON object a line (time, level, logger, message and any
# extra fields) for a log collector. Django's own loggers are listed so that
# their default console handler goes and each record is written once, here.
LOG_FORMAT = env_str("LOG_FORMAT", "plain")
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be plain or json, got {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(levelname)s %(name)s %(message)s",
            "rename_fields": {"levelname": "level", "name": "logger"},
            "timestamp": "time",  # ISO 8601, UTC
        },
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django": {"handlers": [], "level": "NOTSET"},  # LOG_LEVEL, as everything else
        "django.channels.server": {"level": "WARNING"},
    },
}
PICKUP_ALLOW_SQLITE = env_bool("PICKUP_ALLOW_SQLITE", False)
