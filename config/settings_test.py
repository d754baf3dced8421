"""Settings for the test suite: the project's settings, with a Redis database of its own.

Tests publish real Celery messages and start real workers; a separate Redis database (15 by default,
TEST_REDIS_URL to change) keeps them away from a developer's own worker on the same machine.
"""

import os

# A fresh clone has no var/secret_key until a manage.py command made one, and DEBUG is off: the
# tests sign with a key of their own.
os.environ.setdefault("SECRET_KEY", "test-suite-only-key-not-secret-" + "x" * 32)

from config.settings import *  # noqa: E402, F403

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
CELERY_BROKER_URL = REDIS_URL
CACHES["default"]["LOCATION"] = os.environ.get("TEST_CACHE_URL", "redis://127.0.0.1:6379/14")  # noqa: F405
# The search analytics buffer gets a Redis database nobody flushes: the cache's is cleared by search
# tests and the broker's by worker tests, in every checkout sharing this Redis (its keys carry the test
# database's name, so checkouts do not read each other's).
PRODUCT_SEARCH_ANALYTICS_REDIS_URL = os.environ.get("TEST_ANALYTICS_REDIS_URL", "redis://127.0.0.1:6379/13")
CACHES["default"]["KEY_PREFIX"] = "test" + os.environ.get("TEST_DB_SUFFIX", "")  # noqa: F405
# Worker tests make one batch of every pending product, so that a kill lands inside it.
PRODUCT_SEARCH_EMBED_BATCH_SIZE = int(os.environ.get("TEST_EMBED_BATCH_SIZE", "32"))
PRODUCT_SEARCH_MODEL_DIR = os.environ.get("TEST_MODEL_DIR") or None
PRODUCT_SEARCH_VALIDATION_SHARE = float(os.environ.get("TEST_VALIDATION_SHARE", "0.1"))
# Two test runs on one server (two checkouts, two developers) need two throwaway databases.
DATABASES["default"]["TEST"] = {"NAME": "test_product_search" + os.environ.get("TEST_DB_SUFFIX", "")}  # noqa: F405
# Each test builds its own catalogue: search checks the spelling vocabulary against it on every query.
PRODUCT_SEARCH_VOCABULARY_CHECK_SECONDS = 0
