"""Settings for the product-search project, read from the environment.

Importing them has no side effects: they start no server and write no file (`manage.py` does both,
see `config/startup.py`), so `manage.py --help`, a Celery worker or a script can read them anywhere.

Environment variables:
- `DATABASE_URL`: a PostgreSQL server with the pgvector extension available. Unset: the embedded
  PostgreSQL 18 + pgvector in `EMBEDDED_PG_DIR` (default `.pgdata/`), which `make db` and every
  `manage.py` command but help start; other processes that find it down say to run `make db`.
- `REDIS_URL`: the Celery broker (default `redis://127.0.0.1:6379/0`).
- `MEDIA_ROOT`: where product photos are stored (default `var/media/`).
- `SECRET_KEY`: required when `DEBUG` is off; in debug a random key is kept in `var/secret_key`
  (created by `manage.py`; a process that starts before it exists uses a key of its own).
- `DEBUG`: `1`/`true` to enable (default on, for the demo; turn it off in production).
- `ALLOWED_HOSTS`: comma-separated (default `127.0.0.1,localhost`).
- `CORS_ALLOWED_ORIGINS`: comma-separated storefront origins allowed to call the API.
"""

from __future__ import annotations

import os
import secrets
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


DEBUG = _env_bool("DEBUG", True)


def _secret_key() -> str:
    configured = os.environ.get("SECRET_KEY")
    if configured:
        return configured
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    # A per-checkout random key, so that no two demo installs share one; manage.py creates it.
    return local_state.secret_key_read() or secrets.token_urlsafe(50)


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = _env_list("ALLOWED_HOSTS", "127.0.0.1,localhost")

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
    "catalog",
    "lifecycle",
    "search",
    "workers.apps.WorkersConfig",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
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
            "OPTIONS": {},
        }
    database: dict[str, Any] = dict(dj_database_url.parse(configured, conn_max_age=60))
    options = database.setdefault("OPTIONS", {})
    # A socket folder given as `?host=` lands in OPTIONS, which psql (dbshell) never sees: make it HOST.
    if not database.get("HOST") and "host" in options:
        database["HOST"] = options.pop("host")
    return database


DATABASES = {"default": _database()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

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
MEDIA_URL = "media/"
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))
# Uploads larger than this go to a temporary file instead of memory; the photo size limit itself
# is PRODUCT_SEARCH_MAX_IMAGE_BYTES (catalog/conf.py).
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
CELERY_BROKER_URL = REDIS_URL
# No Redis (e.g. a demo without it): tasks run in the calling process instead of a worker.
CELERY_TASK_ALWAYS_EAGER = _env_bool("CELERY_TASK_ALWAYS_EAGER", False)

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
}

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

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}
