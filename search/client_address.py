"""The client's address, read one way for everything that counts by it (API throttles, admin lockout).

`X-Forwarded-For` is a list that every proxy appends to, and whatever a client sends is at its start.
Behind `TRUSTED_PROXY_COUNT` proxies the client is the entry that many places from the end; with none,
the header is ignored and the socket's address is the client, so a forged header changes nothing.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def client_address(request: HttpRequest) -> str | None:
    remote = request.META.get("REMOTE_ADDR")
    # A host shop may not define it: no trusted proxy, the safe reading.
    proxies = int(getattr(settings, "TRUSTED_PROXY_COUNT", 0))
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR")
    if proxies <= 0 or not forwarded:
        return remote
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    if not hops:
        return remote
    return hops[-min(proxies, len(hops))]
