"""Settings for the product-search project, read from the environment.

Importing them has no side effects: they start no server and write no file (`manage.py` does both,
see `config/startup.py`), so `manage.py --help`, a Celery worker or a script can read them anywhere.

Environment variables (docs/deployment.md has the production set):
- `DATABASE_URL`: a PostgreSQL server with the pgvector extension available. Unset: the embedded
  PostgreSQL 18 + pgvector in `EMBEDDED_PG_DIR` (default `.pgdata/`), which `make db` and every
  `manage.py` command but help start; other processes that find it down say to run `make db`.
- `DATABASE_REPLICA_URL`: a streaming read replica of that server, which the search API reads from while
  it is at most `REPLICA_MAX_LAG_SECONDS` (default 5) behind (search/read_replica.py); unset: none.
- `REDIS_URL`: the Celery broker (default `redis://127.0.0.1:6379/0`); `CACHE_URL`: the shared cache
  that holds throttle counts (default database 1 of the same Redis). `EMBED_QUEUES`: the queues each
  embedding run goes to (comma-separated, e.g. `embed,train`; default the `embed` queue alone).
- `ENCODER_RUNTIME`: `torch` (default) or `onnx`, the photo trunk in ONNX Runtime on CPU (lifecycle/conf.py).
- `MEDIA_ROOT`: where product photos are stored (default `var/media/`); `SERVE_MEDIA=0` when the front
  web server serves them (production), else the app does (the demo).
- `SECRET_KEY`: required in production; unset, the checkout's random key `var/secret_key` (created by
  `manage.py`) is used, and a process without either refuses to start unless `DEBUG` is on.
- `DEBUG`: `1`/`true` to enable; off by default (it would show settings and source to anybody).
- `ALLOWED_HOSTS`: comma-separated (default `127.0.0.1,localhost`); `CSRF_TRUSTED_ORIGINS` likewise.
- `HTTPS_ONLY=1`: the site is served over HTTPS only: redirect, secure cookies, HSTS (`HSTS_SECONDS`).
- `TRUSTED_PROXY_COUNT`: how many reverse proxies in front of the app append to `X-Forwarded-For`
  (default 0: the client address is the socket's, and the header is ignored, so it cannot be forged).
- `CORS_ALLOWED_ORIGINS`: comma-separated storefront origins allowed to call the API.
"""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config import embedded_postgres, local_state

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = local_state.var_dir()


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = _env_bool("DEBUG", False)


def _secret_key() -> str:
    configured = os.environ.get("SECRET_KEY")
    if configured:
        return configured
    # A per-checkout random key, so that no two installs share one; manage.py creates it.
    checkout_key = local_state.secret_key_read()
    if checkout_key:
        return checkout_key
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY must be set (or var/secret_key created by any manage.py command) when DEBUG is off."
        )
    return secrets.token_urlsafe(50)


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = _env_list("ALLOWED_HOSTS", "127.0.0.1,localhost")
CSRF_TRUSTED_ORIGINS = _env_list("CSRF_TRUSTED_ORIGINS", "")
TRUSTED_PROXY_COUNT = int(os.environ.get("TRUSTED_PROXY_COUNT", "0"))

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "corsheaders",
    "axes",
    "catalog",
    "lifecycle",
    "search",
    "workers.apps.WorkersConfig",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "config.middleware.DatabaseUnavailableMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes requires: it answers a locked-out login.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.media",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


def _database() -> dict[str, Any]:
    configured = os.environ.get("DATABASE_URL")
    if not configured:
        # Where the embedded server's socket is (or will be once started); this starts nothing.
        return {
            "ENGINE": "config.embedded_postgres_backend",
            **embedded_postgres.connection_settings(),
            "CONN_MAX_AGE": 60,
            "CONN_HEALTH_CHECKS": True,
            "OPTIONS": {},
        }
    # A server that went away must fail a request in seconds (503), not hang it until the proxy gives up.
    return _database_from_url(configured, connect_timeout=5)


def _database_from_url(url: str, *, connect_timeout: int) -> dict[str, Any]:
    database: dict[str, Any] = dict(dj_database_url.parse(url, conn_max_age=60, conn_health_checks=True))
    options = database.setdefault("OPTIONS", {})
    options.setdefault("connect_timeout", connect_timeout)
    # A socket folder given as `?host=` lands in OPTIONS, which psql (dbshell) never sees: make it HOST.
    if not database.get("HOST") and "host" in options:
        database["HOST"] = options.pop("host")
    # A port given as `?port=` (beside a socket folder) names the socket file: make it PORT.
    if not database.get("PORT") and "port" in options:
        database["PORT"] = options.pop("port")
    return database


def _replica_database() -> dict[str, Any] | None:
    """The streaming read replica search reads from (search/read_replica.py), when one is configured."""
    configured = os.environ.get("DATABASE_REPLICA_URL")
    if not configured:
        return None
    # A replica that does not answer is passed over for the primary: find out fast.
    database = _database_from_url(configured, connect_timeout=2)
    # The test runner makes no database on a standby (it cannot write): it reads the primary's.
    database["TEST"] = {"MIRROR": "default"}
    return database


DATABASES = {"default": _database()}
# DATABASE_REPLICA_URL unset: one database and no router, exactly as before.
_replica = _replica_database()
if _replica is not None:
    DATABASES["replica"] = _replica
    # Search reads inside search.read_replica.search_read go to the replica; writes never do.
    DATABASE_ROUTERS = ["search.read_replica.SearchReadRouter"]
    if os.environ.get("REPLICA_MAX_LAG_SECONDS"):
        PRODUCT_SEARCH_REPLICA_MAX_LAG_SECONDS = float(os.environ["REPLICA_MAX_LAG_SECONDS"])
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Each process keeps one connection per thread for CONN_MAX_AGE; the server's thread count (gunicorn
# workers x threads, config/gunicorn.conf.py) is what bounds the connections, and it checks them
# against the server's max_connections when it starts.
CACHE_URL = os.environ.get("CACHE_URL", "redis://127.0.0.1:6379/1")
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": CACHE_URL,
        # A Redis that went away must not hang requests: throttling fails open (search/access.py).
        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
    }
}

AUTHENTICATION_BACKENDS = [
    # django-axes first: it refuses a login from a client locked out after repeated failures.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = int(os.environ.get("ADMIN_LOGIN_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=int(os.environ.get("ADMIN_LOGIN_COOLOFF_MINUTES", "15")))
# Locked per client address and username together: a wrong password from one address does not lock
# the account for everybody; the address is read as DRF reads it (TRUSTED_PROXY_COUNT).
AXES_LOCKOUT_PARAMETERS = [["ip_address", "username"]]
AXES_CLIENT_IP_CALLABLE = "search.client_address.client_address"
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", VAR_DIR / "static"))
# WhiteNoise serves static files from the app, compressed, from STATIC_ROOT after `collectstatic`
# (`make serve` runs it) and straight from the apps' folders before it, so a forgotten collectstatic
# never breaks the storefront.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG
# The app serves product photos unless the front web server does (docs/deployment.md).
SERVE_MEDIA = _env_bool("SERVE_MEDIA", True)
MEDIA_URL = "media/"
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))
# Uploads larger than this go to a temporary file instead of memory; the photo size limit itself
# is PRODUCT_SEARCH_MAX_IMAGE_BYTES (catalog/conf.py).
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
CELERY_BROKER_URL = REDIS_URL
# Queues each embedding run is sent to (lifecycle/conf.py); e.g. EMBED_QUEUES=embed,train lets a GPU
# `train` worker share the embedding with the `embed` workers. Unset: the `embed` queue alone.
if os.environ.get("EMBED_QUEUES"):
    PRODUCT_SEARCH_EMBED_QUEUES = _env_list("EMBED_QUEUES", "")
# What runs the photo trunk on CPU (lifecycle/conf.py): "torch" (the default) or "onnx" (ONNX Runtime,
# `pip install 'product-search[onnx]'`).
if os.environ.get("ENCODER_RUNTIME"):
    PRODUCT_SEARCH_ENCODER_RUNTIME = os.environ["ENCODER_RUNTIME"]
# No Redis (e.g. a demo without it): tasks run in the calling process instead of a worker.
CELERY_TASK_ALWAYS_EAGER = _env_bool("CELERY_TASK_ALWAYS_EAGER", False)

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    # The client address throttles count by: X-Forwarded-For is read only behind that many proxies.
    "NUM_PROXIES": TRUSTED_PROXY_COUNT,
}

HTTPS_ONLY = _env_bool("HTTPS_ONLY", False)
if HTTPS_ONLY:
    SECURE_SSL_REDIRECT = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = int(os.environ.get("HSTS_SECONDS", str(365 * 24 * 3600)))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = _env_bool("HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = _env_bool("HSTS_PRELOAD", True)
    if TRUSTED_PROXY_COUNT:
        # TLS ends at the proxy, which says so in this header (and strips it from clients).
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

SPECTACULAR_SETTINGS = {
    "TITLE": "Product search API",
    "DESCRIPTION": "Text, photo and similar-product search over the shop's catalogue.",
    "VERSION": "1.0.0",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SERVE_INCLUDE_SCHEMA": False,
}

CORS_ALLOWED_ORIGINS = _env_list("CORS_ALLOWED_ORIGINS", "")
# CORS applies to the API only; storefronts on other origins may send their API key.
CORS_URLS_REGEX = r"^/api/.*$"
CORS_ALLOW_METHODS = ["GET", "POST", "OPTIONS"]
CORS_ALLOW_HEADERS = ["accept", "content-type", "x-api-key"]
# Search API keys (X-Api-Key; empty: open) and throttle rates, e.g. "120/min" or "off".
PRODUCT_SEARCH_API_KEYS = _env_list("SEARCH_API_KEYS", "")
_search_anon_rate = os.environ.get("SEARCH_THROTTLE_ANON_RATE", "120/min")
PRODUCT_SEARCH_THROTTLE_ANON_RATE = None if _search_anon_rate.lower() == "off" else _search_anon_rate
# Search analytics (docs/analytics.md): every search and its clicks recorded, without client addresses.
PRODUCT_SEARCH_ANALYTICS_ENABLED = _env_bool("SEARCH_ANALYTICS", True)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}
