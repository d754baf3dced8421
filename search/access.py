"""Who may call the search API, and how often.

Open and anonymous by default. With `PRODUCT_SEARCH_API_KEYS` set, every call needs one of the keys
in the `X-Api-Key` header (storefronts each get one). Throttles are DRF rate throttles with rates
from settings: per client address without a key (search/client_address.py: `X-Forwarded-For` is
trusted only behind TRUSTED_PROXY_COUNT proxies), per key with one. Counts live in the shared cache
(Redis), so every server process and machine counts together.
"""

from __future__ import annotations

import hashlib
import hmac
import logging

from redis.exceptions import RedisError
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView

from search.client_address import client_address
from search.conf import search_settings
from search.exceptions import InvalidApiKey

logger = logging.getLogger(__name__)
# Django's Redis cache raises redis-py's errors as they are; OSError covers a refused socket.
CACHE_ERRORS = (RedisError, OSError)

API_KEY_HEADER = "HTTP_X_API_KEY"


def _request_api_key(request: Request) -> str | None:
    """The request's key when it is one of the configured keys, else None."""
    given = request.META.get(API_KEY_HEADER, "")
    if not given:
        return None
    for key in search_settings.API_KEYS:
        if hmac.compare_digest(given.encode(), str(key).encode()):
            return given
    return None


class HasApiKeyWhenConfigured(BasePermission):
    def has_permission(self, request: Request, view: APIView) -> bool:
        if not search_settings.API_KEYS:
            return True
        if _request_api_key(request) is None:
            raise InvalidApiKey()
        return True


class _SettingsRateThrottle(SimpleRateThrottle):
    """A rate throttle whose rate is read from search settings at each request (so tests can change it)."""

    setting_name = ""

    def __init__(self) -> None:  # SimpleRateThrottle reads THROTTLE_RATES here; rates come later
        pass

    def get_rate(self) -> str | None:
        return getattr(search_settings, self.setting_name)

    def allow_request(self, request: Request, view: APIView) -> bool:
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)  # type: ignore[assignment]
        try:
            return super().allow_request(request, view)
        except CACHE_ERRORS as error:
            # The counts live in the shared cache (Redis). Without it, searching beats refusing
            # every shopper: the throttle lets the request through and says so in the log.
            logger.warning("Throttle counts unavailable (%s); request allowed", error)
            return True

    def get_ident(self, request: Request) -> str:
        return client_address(request) or ""


class AnonymousSearchThrottle(_SettingsRateThrottle):
    scope = "search_anonymous"
    setting_name = "THROTTLE_ANON_RATE"

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        if _request_api_key(request) is not None:
            return None
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class ApiKeySearchThrottle(_SettingsRateThrottle):
    scope = "search_api_key"
    setting_name = "THROTTLE_API_KEY_RATE"

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        key = _request_api_key(request)
        if key is None:
            return None
        return self.cache_format % {
            "scope": self.scope,
            "ident": hashlib.sha256(key.encode()).hexdigest()[:16],
        }
