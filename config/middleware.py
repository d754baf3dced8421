"""A database that went away answers 503 with Retry-After, not 500 with a traceback.

Django closes a connection that failed (CONN_HEALTH_CHECKS and the end-of-request check), so once the
server is back the next request reconnects: no restart is needed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5
UNAVAILABLE_MESSAGE = "The catalogue database is unavailable right now. Try again in a few seconds."


def database_unavailable_response(request: HttpRequest) -> HttpResponse:
    if request.path.startswith("/api/"):
        response: HttpResponse = JsonResponse(
            {"detail": UNAVAILABLE_MESSAGE, "code": "database_unavailable"}, status=503
        )
    else:
        response = HttpResponse(UNAVAILABLE_MESSAGE, status=503, content_type="text/plain; charset=utf-8")
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


class DatabaseUnavailableMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        # OperationalError: no server, refused, restarting, connection lost; InterfaceError: a
        # connection psycopg already knows is closed. Both pass once the server answers again.
        if isinstance(exception, (OperationalError, InterfaceError)):
            logger.warning("Database unavailable on %s %s: %s", request.method, request.path, exception)
            return database_unavailable_response(request)
        return None
